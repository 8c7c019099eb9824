"""expect_valid on hand-written histories: the failure text names each anomaly, the faults around
it, the seed and the hint; the anomaly kinds are recorded for verify; the picture is drawn. A
public test's failure reads the same way (issue 12, point 8): its own words and the lab's hint
that fits, never pytest's rewriting of an assertion with the grader's objects in it; and a run of
the public tests inside the checkout does not warn about pytest-timeout's `timeout` option."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from splitbrain.checkers.base import Anomaly, Verdict, verdict
from splitbrain.grading import expect_valid
from splitbrain.grading.context import TestContext, set_current
from splitbrain.grading.explain import faults_around
from splitbrain.history import History


def history() -> History:
    h = History()
    a = h.invoke("a", "write", 1)
    h.complete(a, "ok", True)
    h.fault("pause", "a", phase="start")
    b = h.invoke("b", "write", 2)
    h.complete(b, "ok", True)
    h.fault("pause", "a", phase="end")
    h.fault("partition", "redis")  # never healed
    return h


def test_faults_around_an_anomaly_name_the_fault_active_then():
    h = history()
    assert faults_around(Anomaly("x", "m", (3, 4)), h)[0].startswith("pause(a)")


def test_valid_verdict_passes_and_records_nothing(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="t::ok", artifacts=tmp_path, user_properties=props))
    v = verdict("writes", [])
    assert expect_valid(v, history()) is v and props == []


def test_invalid_verdict_explains_itself(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="x.py::test_07_pause", seed=42, artifacts=tmp_path,
                            user_properties=props))
    v = verdict("fencing", [Anomaly("stale-write", "a wrote with token 3 after b wrote with 4",
                                    (3, 4))])
    with pytest.raises(AssertionError) as e:
        expect_valid(v, history(), hint="check the token in the store")
    msg = str(e.value)
    assert "fencing: 1 anomaly" in msg
    assert "[stale-write] a wrote with token 3 after b wrote with 4" in msg
    assert "faults active: pause(a)" in msg and "partition" not in msg  # it began later
    assert "replay with --seed 42" in msg and "hint: check the token in the store" in msg
    assert ("anomalies", ["stale-write"]) in props
    pictures = [v for k, v in props if k == "picture"]
    assert pictures and pictures[0].endswith("test_07_pause.svg")
    assert f"picture: {pictures[0]}" in msg


def test_unknown_is_never_valid(tmp_path):
    props: list = []
    set_current(TestContext(nodeid="t::u", artifacts=tmp_path, user_properties=props))
    with pytest.raises(AssertionError, match="unknown never counts as valid"):
        expect_valid(Verdict("unknown", (), "big"))
    assert ("anomalies", ["unknown"]) in props


FIXTURE = Path(__file__).parent / "fixtures" / "project"
WORDS = """\
import time

import pytest

from splitbrain.checkers.base import Anomaly, verdict
from splitbrain.grading import expect_valid

pytestmark = pytest.mark.points(0)


class Holder:
    def __repr__(self):
        return "Holder(worker=<the grader's internals>)"

    def acquire(self):
        return 17


def test_a_late_release_leaves_the_new_holder_alone():
    c = Holder()
    assert c.acquire() is None, "a's release freed b's lock,\\nand c took it while b held it"


def test_bare_assert():
    assert Holder().acquire() is None


def test_public_verdict_without_a_hint():
    expect_valid(verdict("counts", [Anomaly("lost-update", "one increment of two is lost")]))


def test_sleeps():
    time.sleep(3)
"""


@pytest.fixture
def project(tmp_path):
    """The fixture lab with two hints that are easy to tell apart, public tests that fail in
    words, and the checkout's pytest settings (pytest-timeout's `timeout` among them)."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    toml = root / "labs" / "00-counter" / "lab.toml"
    text = toml.read_text()
    start = text.index("hints = [")
    end = text.index("]", start) + 1
    toml.write_text(text[:start] + 'hints = ["The counter loses increments when two workers '
                    'read the same value: use INCR.", "release() must delete the key only if '
                    'it still holds the lock."]' + text[end:])
    (root / "labs" / "00-counter" / "test_words.py").write_text(WORDS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-ra '
                                         '--strict-markers"\ntimeout = 600\n')
    return root


def _public(project, tmp_path, *args):
    """The public tests as the notebook runs them: from the lab's folder, under the plugin."""
    env = {**os.environ, "SPLITBRAIN_ROOT": str(project), "SPLITBRAIN_HOME": str(tmp_path / "h")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--color=no", "-p",
                           "splitbrain.grading.plugin", "--lab", "00-counter", *args],
                          cwd=project / "labs" / "00-counter", env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_public_test_fails_in_its_own_words_with_the_lab_hint_that_fits(project, tmp_path):
    results = tmp_path / "r.json"
    out = _public(project, tmp_path, "-p", "no:timeout", "-p", "no:cacheprovider",
                  "test_words.py", "-k", "not sleeps", "--sb-results", str(results),
                  "--sb-artifacts", str(tmp_path / "art"))
    assert out.returncode == 1, out.stdout + out.stderr
    # pytest-timeout absent (-p no:timeout), the checkout's `timeout = 600` is still known
    assert "Unknown config option" not in out.stdout + out.stderr
    said = {t["name"]: t["message"] for t in json.loads(results.read_text())["tests"]}
    late = said["test_a_late_release_leaves_the_new_holder_alone"]
    assert late == ("a's release freed b's lock,\nand c took it while b held it\n"
                    "hint: release() must delete the key only if it still holds the lock.")
    bare = said["test_bare_assert"]
    line = WORDS.splitlines().index("    assert Holder().acquire() is None") + 1
    assert bare.startswith(f"a check of the test failed (test_words.py, line {line}): "
                           f"assert Holder().acquire() is None\nhint: "), bare
    for message in (late, bare):   # nothing of pytest's rewriting, nothing of the grader's
        assert "where" not in message and "Holder(worker" not in message and "17" not in message
    verdict_msg = said["test_public_verdict_without_a_hint"]
    assert "[lost-update] one increment of two is lost" in verdict_msg
    assert verdict_msg.endswith("hint: The counter loses increments when two workers read the "
                                "same value: use INCR.")


def test_pytest_timeout_still_reads_its_timeout_option(project, tmp_path):
    """Where pytest-timeout is installed, its own `timeout` option is the one it reads (its thread
    method: the plugin's per-test alarm takes SIGALRM, which its signal method would use)."""
    out = _public(project, tmp_path, "-p", "no:cacheprovider", "-o", "timeout=1", "-o",
                  "timeout_method=thread", "test_words.py", "-k", "sleeps")
    assert "Timeout" in out.stdout + out.stderr and out.returncode != 0, out.stdout + out.stderr
