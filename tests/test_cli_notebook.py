"""`splitbrain check` from a notebook cell, as the lab notebooks call it (issue 12, points 6-9):
``!{sys.executable} -m splitbrain check ...`` run through nbclient under a Jupyter kernel the kit
did not start (its venv is not on PATH), the notebook saved, and its outputs read back.

One run of a notebook on a copy of the fixture lab (tests/fixtures/project, 00-counter) with its
own state folder, so that `check` has to start the services, and its own TMPDIR, so that whatever
the run leaves behind can be counted: a component that raises NameError in increment() is
checked twice, `splitbrain hint` is asked once, the broken handout is checked, an experiment
spawns a worker, and the public tests run the way the notebook runs them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from splitbrain.cli._run import in_notebook, live

FIXTURE = Path(__file__).parent / "fixtures" / "project"
HINTS = ["Two workers read the same value before either writes it back.",
         "Redis has a command that reads and writes in one step: INCR.",
         "increment() must return the count after its own increment; value() the count now."]
ALWAYS_FAILS = "this check always fails: it shows how a public test's own words read"
PUBLIC = f'''

def test_the_count_reads_in_words(spawn, ns):
    c = spawn("b").new("Counter", Ref("redis"), key=ns.key("c"))
    assert c.increment() == 2, "{ALWAYS_FAILS}"
'''
CELLS = [
    "import sys",
    "!{sys.executable} -m splitbrain check 00 --submission name_error.py",
    "!{sys.executable} -m splitbrain check 00 --submission name_error.py",
    "!{sys.executable} -m splitbrain hint 00",
    "!{sys.executable} -m splitbrain check 00 --submission counter.py",
    "from splitbrain import notebook as nb\n"
    "from splitbrain.sandbox import Ref\n"
    "services = nb.up(['redis'])\n"
    "with nb.experiment('counter.py', services) as ex:\n"
    "    c = ex.spawn('a').new('Counter', Ref('redis'), key=ex.ns.key('c'))\n"
    "    print('counted', c.increment())",
    "!{sys.executable} -m pytest -q --color=no -p splitbrain.grading.plugin --lab 00-counter "
    "--submission counter.py test_public.py",
]
SPINNER = re.compile("[\u2800-\u28ff]")  # rich's spinner frames are braille dots


def _env(project: Path, home: Path, tmp: Path) -> dict:
    """A kernel started by Jupyter, not by the kit: the venv is not on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and p != venv_bin) or "/usr/bin:/bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPLITBRAIN_")}
    env.update(PATH=path, SPLITBRAIN_ROOT=str(project), SPLITBRAIN_HOME=str(home),
               TMPDIR=str(tmp), MPLBACKEND="Agg")
    env.pop("JPY_PARENT_PID", None)
    return env


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], env=env, text=True,
                          capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    from nbclient import NotebookClient
    base = tmp_path_factory.mktemp("notebook")
    project, home, tmp = base / "project", base / "home", base / "tmp"
    shutil.copytree(FIXTURE, project)
    home.mkdir()
    tmp.mkdir()
    os.chmod(tmp, 0o1777)             # workers run as other users and make their folders here
    lab = project / "labs" / "00-counter"
    toml = lab / "lab.toml"
    text = toml.read_text()
    start = text.index("hints = [")
    toml.write_text(text[:start] + f"hints = {json.dumps(HINTS)}"
                    + text[text.index("]", start) + 1:])
    (lab / "name_error.py").write_text((lab / "counter.py").read_text().replace(
        "        value = int(", "        undefined_name\n        value = int(", 1))
    with open(lab / "test_public.py", "a") as f:
        f.write(PUBLIC)
    env = _env(project, home, tmp)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    saved = lab / "ran.ipynb"
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)             # the kernel inherits this environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(lab)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
        nbformat.write(nb, saved)
    yield SimpleRun(nbformat.read(saved, as_version=4), env, home, tmp)
    _cli(env, "down", "--purge")


class SimpleRun:
    def __init__(self, nb, env, home, tmp):
        self.nb, self.env, self.home, self.tmp = nb, env, home, tmp

    def outputs(self, i: int) -> list:
        return self.nb.cells[i].outputs

    def text(self, i: int) -> str:
        return "".join(o.get("text", "") for o in self.outputs(i)).replace("\r\n", "\n")


@pytest.mark.slow
def test_check_in_a_notebook_writes_plain_lines_one_per_step(ran):
    for i in (1, 2, 3, 4, 6):
        outs, text = ran.outputs(i), ran.text(i)
        assert outs and all(o.output_type == "stream" for o in outs), outs
        assert "\x1b" not in text and not SPINNER.search(text) and "\r" not in text, repr(text)
        # no output is a fragment of a redrawn line: never more outputs than lines
        assert len(outs) <= text.count("\n") + 1, (len(outs), text)
        assert "Unknown config option" not in text and "Traceback (most recent" not in text
    for i in (1, 2, 4):
        text = ran.text(i)
        assert text.count("starting postgres, redis if needed") == 1, text
        assert len(re.findall(r"grading \w+\.py for 00-counter under faults", text)) == 1, text
        assert re.search(r"^  failed +0/20  test_02_two_workers_do_not_lose_increments  "
                         r"\[concurrency\]$", text, re.M), text   # one line per test, no box


@pytest.mark.slow
def test_check_says_what_it_started_and_that_it_keeps_running(ran):
    first, second = ran.text(1), ran.text(2)
    assert ("started postgres, redis (embedded); they keep running after this command, for the "
            "next one: `splitbrain down` stops them.") in first
    assert "they keep running" not in second                   # nothing started this time
    status = json.loads(_cli(ran.env, "status", "--json").stdout)["services"]
    assert set(status) == {"postgres", "redis"} and all(s["healthy"] for s in status.values())


@pytest.mark.slow
def test_the_hint_fits_what_failed_and_the_same_failure_shows_it_again(ran):
    first, second, asked, handout = ran.text(1), ran.text(2), ran.text(3), ran.text(4)
    crash = re.search(r"first: your name_error\.py raised NameError in increment\(\) in (\d+) "
                      r"of (\d+) tests", first)
    assert crash and crash.group(1) == crash.group(2), first    # every test calls increment()
    assert "hint 3/3 (for test_01_one_worker_counts, " in first and HINTS[2] in first, first
    assert "another hint about this failure: `splitbrain hint 00-counter`" in first
    assert "hint 3/3 (for test_01_one_worker_counts, " in second       # the same failure
    assert re.match(r"hint [12]/3: ", asked), asked              # the next one about it
    fits = re.search(r"\nhint (\d)/3 \(for ([^)]*)\): (.*)\n", handout)   # the hint naming failed tests
    assert fits and fits.group(3) == HINTS[int(fits.group(1)) - 1], handout
    assert all(f"{name} (failed)" in handout for name in re.findall(r"test_\w+", fits.group(2)))
    progress = json.loads(_cli(ran.env, "labs", "--json").stdout)["labs"][0]["progress"]
    assert progress["attempts"] == 3 and sorted(progress["hints_seen"]) in ([1, 3], [1, 2, 3])


@pytest.mark.slow
def test_a_failing_public_test_reads_like_a_hidden_one(ran):
    text = ran.text(4)
    said = text[text.index("test_the_count_reads_in_words (failed)"):]
    said = said[:said.index("\nhistory: ")]
    lines = said.splitlines()
    assert len(lines) == 3 and lines[1] == ALWAYS_FAILS and lines[2][6:] in HINTS, said
    assert "where" not in text and "<remote" not in text and "assert 1 == 2" not in text


@pytest.mark.slow
def test_a_notebook_run_leaves_nothing_in_the_temp_folder(ran):
    left = sorted(p.name for p in ran.tmp.iterdir())
    assert not [n for n in left if re.match(r"sb-.*-log$", n)], left
    assert not [n for n in left if n.startswith("splitbrain-sub-")], left
    assert left == [], left
    assert "counted 1" in ran.text(5)


@pytest.mark.slow
def test_down_says_what_it_keeps_in_memory_and_purge_deletes_it(ran):
    down = _cli(ran.env, "down")
    assert down.returncode == 0 and "stopped: postgres, redis" in down.stderr, down.stderr
    m = re.search(r"kept for the next `up`: the embedded data, (\d+) MB in (\S+?)"
                  r"( \(/dev/shm is memory\))?; `splitbrain down --purge` deletes it",
                  down.stderr)
    assert m, down.stderr
    data = Path(m.group(2))
    assert data.is_dir() and int(m.group(1)) > 0
    if os.access("/dev/shm", os.W_OK) and not ran.env.get("SPLITBRAIN_RUNTIME_DIR"):
        assert str(data).startswith("/dev/shm/") and m.group(3)
    purge = _cli(ran.env, "down", "--purge")
    assert f"deleted: the embedded data, {m.group(1)} MB in {data}" in purge.stderr, purge.stderr
    assert not data.exists()
    kept = re.search(r"kept: the Postgres template every checkout of yours copies, \d+ MB in "
                     r"(\S+)$", purge.stderr, re.M)
    assert kept and Path(kept.group(1)).is_dir(), purge.stderr


def test_a_notebook_is_told_from_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True
    for var in ("JPY_PARENT_PID", "TTY_COMPATIBLE", "TERM", "CLICOLOR_FORCE"):
        monkeypatch.delenv(var, raising=False)
    assert live(Tty()) and not in_notebook()
    monkeypatch.setenv("JPY_PARENT_PID", "1")                  # a command a kernel runs
    assert in_notebook() and not live(Tty())
    monkeypatch.delenv("JPY_PARENT_PID")
    monkeypatch.setenv("TERM", "xterm-color")                  # what ipykernel sets for `!`
    monkeypatch.setenv("CLICOLOR_FORCE", "1")
    assert not live(Tty())
    monkeypatch.setenv("TTY_COMPATIBLE", "1")                  # the user decides
    assert live(Tty())
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    monkeypatch.delenv("TERM")
    assert not live(Tty())
