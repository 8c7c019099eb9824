"""Hostile and broken submissions of the fixture lab, graded in one batch: each gets a clear
per-test verdict, and the good submissions in the same batch still get full marks.

The batch runs against a private Redis and Postgres so that a submission that wipes a server could
only ever wipe this test's servers (the namespaces' ACL users and roles are what stop it)."""
import os
from pathlib import Path

import pytest

from splitbrain.grading.runner import grade_batch
from splitbrain.grading.submissions import expand
from splitbrain.lab import discover_labs
from splitbrain.testing import require

pytestmark = pytest.mark.slow   # the grading of a whole batch of hostile submissions

FIXTURE = Path(__file__).parent / "fixtures" / "project"
HOSTILE = Path(__file__).parent / "hostile" / "00-counter"

# file -> (status of every test, text every message contains); None: graded like the broken lab
EXPECT = {
    "syntax_error.py": ("error", "syntax error on line 1"),
    "import_error.py": ("failed", "ModuleNotFoundError"),
    "missing_function.py": ("error", "does not define Counter"),
    "wrong_signature.py": ("failed", "TypeError"),
    "not_json.ipynb": ("error", "not a notebook"),
    "empty.py": ("error", "the file is empty"),
    "infinite_loop.py": ("timeout", "did not answer within 5 s"),
    "fork_bomb.py": ("failed", "BlockingIOError"),
    "memory_hog.py": ("failed", "MemoryError"),
    "os_exit.py": ("failed", "exited with status 3"),
    "read_hidden_tests.py": ("failed", "PermissionError"),
    "borrow_the_solution.py": ("failed", "PermissionError"),
    "flushall.py": ("failed", "NoPermissionError"),
    "delete_other_keys.py": ("failed", "NoPermissionError"),
    # refused whatever it reaches first; a database it listed may also be gone by the time it
    # connects (the batch's other namespaces come and go): every road ends in an error
    "drop_other_databases.py": ("failed", ("permission denied", "must be owner",
                                           "does not exist")),
    "overwrite_results.py": None,
    "monkeypatch_checker.py": None,
    "good_solution.py": ("passed", ""),
    "good_tagged.ipynb": ("passed", ""),
    "good_untagged.ipynb": ("passed", ""),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    require(os.geteuid() == 0, "the hostile batch needs root to run workers as their own users "
                               "(fork bomb, hidden tests)")
    from splitbrain.services import spawn_postgres, spawn_redis
    server, pg = spawn_redis(), spawn_postgres()
    mp = pytest.MonkeyPatch()
    mp.setenv("SPLITBRAIN_REDIS_URL", server.url)
    mp.setenv("SPLITBRAIN_POSTGRES_URL", pg.url)
    mp.setenv("SPLITBRAIN_ROOT", str(FIXTURE))
    try:
        (lab,) = discover_labs(FIXTURE)
        subs = expand([HOSTILE])
        results = grade_batch(lab, subs, tmp_path_factory.mktemp("hostile"), jobs=2)
        yield {Path(r.submission).name: r for r in results}
    finally:
        mp.undo()
        server.close()
        pg.close()


def test_every_hostile_file_is_listed():
    assert sorted(p.name for p in expand([HOSTILE])) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_hostile_submission_gets_a_clear_verdict(graded, name):
    r = graded[name]
    assert r.error is None, r.error
    assert [t.name for t in r.tests] == ["test_01_one_worker_counts",
                                         "test_02_two_workers_do_not_lose_increments",
                                         "test_03_seeded_pauses_lose_nothing"]
    expected = EXPECT[name]
    if expected is None:  # tampering changed nothing: scored exactly like the broken counter
        assert [t.status for t in r.tests] == ["passed", "failed", "failed"]
        assert r.tests[1].anomalies == ("lost-update",) and r.score == 10
        return
    status, text = expected
    texts = text if isinstance(text, tuple) else (text,)
    for t in r.tests:
        assert t.status == status, (t.name, t.status, t.message)
        assert any(x in t.message for x in texts), t.message
    assert r.score == (30 if status == "passed" else 0)
