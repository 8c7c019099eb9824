"""The hint `splitbrain check` shows fits what failed (issue 12, point 6): a NameError in write()
gets the hint about write(), not the next unread one; showing it spends nothing, the same failure
shows the same hint, and `splitbrain hint` then reveals the next one about that failure. lab.toml's
optional ``hint_for`` table decides before the words do. No services: the failures are written
the way the grader writes them."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from splitbrain.grading.handout import (Failure, failures_of, forget_failure, hint_for_failures,
                                        load_progress_for, more_about_failure, next_hint,
                                        rank_hints, save_progress_for)
from splitbrain.grading.outcome import raised_in, sandbox_paths
from splitbrain.grading.results import GradingResult, TestResult

# lab 01's four hints, as the learner in issue 12 met them: the fourth is about release()
HINTS = (
    "Run the notebook's pause experiment and read the picture: the first holder's write lands "
    "after the second holder's. Nothing in FencedStore.write looks at the token it is given. The "
    "storage is the only party that sees both writes, so the check belongs there.",
    "Make the write conditional in one SQL statement: store the token with the value and update "
    "only when the stored token is not greater than the one offered (INSERT ... ON CONFLICT ... "
    "DO UPDATE ... WHERE). Report whether a row was written.",
    "A fencing token must grow with every acquisition, whatever the clocks say. A timestamp from "
    "the holder's clock does not: a clock that runs behind issues a smaller one. Redis INCR on a "
    "second key does, if it happens in the same atomic step as the SET (a Lua script).",
    "release() deletes the key even when the lease expired and someone else holds it now. Store "
    "a random owner value with SET, and delete only if GET still returns it, in one Lua script "
    "(a GET followed by a DEL can be interleaved).",
)

# what the grader writes when the component raises (outcome.classify), from a worker's folder
NAME_ERROR = sandbox_paths(
    "your component raised NameError: name 'undefined_name' is not defined\n"
    '  File "/tmp/sb-b-xxyjlcfn/lock.py", line 100, in write\n'
    "    undefined_name\n"
    "NameError: name 'undefined_name' is not defined")
STALE = ("lock: 1 anomaly\n  [stale-write] a wrote with lease #1 after b wrote with lease #2\n"
         "replay with --seed 1\nhint: The holder whose lease ran out still wrote, and the storage "
         "took it. Only the storage sees both writes: make write() refuse a token smaller than "
         "the last one stored, in the same statement that writes.")
OVERLAP = ("lock: 1 anomaly\n  [overlapping-holders] c was granted the lock while b's lease "
           "still ran\nhint: release() must delete the key only if it still holds this lock's "
           "own owner value, checked and deleted in one atomic step (a Lua script).")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITBRAIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _lab(**kw):
    return SimpleNamespace(slug="01-fencing-locks", hints=HINTS, component="lock.py", **kw)


def _result(*tests):
    return GradingResult("01-fencing-locks", "lock.py", 1, tuple(tests))


def _failed(name, message, anomalies=(), faults=()):
    return TestResult(name, 0, 10, "failed", message, tuple(faults), anomalies=tuple(anomalies))


NAME_ERRORS = _result(*[_failed(f"test_0{i}_x", NAME_ERROR) for i in (1, 2, 3, 4, 7)],
                      TestResult("test_05_release_by_a_former_holder", 10, 10, "passed"))


def test_the_grader_s_words_say_where_the_component_raised_and_what_the_test_hinted():
    assert 'File "lock.py", line 100, in write' in NAME_ERROR and "sb-b-" not in NAME_ERROR
    assert raised_in(NAME_ERROR, "lock.py") == ("NameError", ("write",))
    assert raised_in(STALE, "lock.py") == ("", ())
    (f, *_), = [failures_of(_result(_failed("test_01", STALE, ["stale-write"], ["pause"])))]
    assert f.anomalies == ("stale-write",) and f.faults == ("pause",)
    assert f.hint.startswith("The holder whose lease ran out") and "hint:" not in f.text
    assert sandbox_paths('File "/tmp/sb-a-1/.rig/fencing.py", line 3') == \
        'File "rig/fencing.py", line 3'


def test_a_name_error_in_write_gets_the_hint_about_write_not_the_next_unread_one(home):
    lab = _lab()
    save_progress_for(lab.slug, {"attempts": 3, "hints_shown": 3})  # hints 1-3 read before
    n, text = hint_for_failures(lab, failures_of(NAME_ERRORS, "lock.py"))
    assert n == 1 and "FencedStore.write" in text   # the old `check` showed hint 4, release()
    ranking = load_progress_for(lab.slug)["failure"]["ranking"]
    assert ranking[:2] == [1, 2]                      # the two about write() come first
    assert next_hint(lab, advance=False)[0] == ranking[1]   # still to come: nothing was spent


def test_the_same_failure_shows_the_same_hint_and_hint_reveals_the_next_about_it(home):
    lab = _lab()
    failures = failures_of(_result(_failed("test_05_release_by_a_former_holder", OVERLAP,
                                           ["overlapping-holders"])))
    ranking = rank_hints(HINTS, failures)
    assert ranking[0] == 4
    assert hint_for_failures(lab, failures)[0] == 4
    assert more_about_failure(lab) == 3
    assert hint_for_failures(lab, failures)[0] == 4            # failed the same way: the same hint
    assert next_hint(lab)[0] == ranking[1]                      # `splitbrain hint`: the next one
    assert hint_for_failures(lab, failures)[0] == 4            # showing it spent nothing
    assert next_hint(lab)[0] == ranking[2]
    assert next_hint(lab)[0] == ranking[3] and more_about_failure(lab) == 0
    assert next_hint(lab)[0] == ranking[3]                      # the last one repeats
    assert sorted(load_progress_for(lab.slug)["hints_seen"]) == [1, 2, 3, 4]


def test_another_failure_gets_its_own_best_hint(home):
    lab = _lab()
    assert hint_for_failures(lab, failures_of(NAME_ERRORS, "lock.py"))[0] == 1
    assert next_hint(lab)[0] != 1
    stale = failures_of(_result(_failed("test_01_write_after_gc_pause", STALE, ["stale-write"])))
    assert hint_for_failures(lab, stale)[0] in (1, 2)
    overlap = failures_of(_result(_failed("test_05_release", OVERLAP, ["overlapping-holders"])))
    assert hint_for_failures(lab, overlap)[0] == 4


def test_most_failures_decide_and_a_crash_counts_once_per_test(home):
    both = failures_of(_result(*NAME_ERRORS.tests, _failed("test_05_release", OVERLAP,
                                                           ["overlapping-holders"])), "lock.py")
    assert rank_hints(HINTS, both)[0] == 1          # five tests crash in write(), one overlaps
    assert rank_hints(HINTS, both[-1:])[0] == 4


def test_without_a_failure_hint_goes_in_order_and_the_last_repeats(home):
    lab = _lab()
    assert [next_hint(lab)[0] for _ in range(5)] == [1, 2, 3, 4, 4]
    assert next_hint(SimpleNamespace(slug="x", hints=())) is None


def test_full_marks_forget_the_failure(home):
    lab = _lab()
    hint_for_failures(lab, failures_of(NAME_ERRORS, "lock.py"))
    forget_failure(lab)
    assert "failure" not in load_progress_for(lab.slug)
    assert next_hint(lab)[0] == 2                  # in order again, after the one already seen


def test_hint_for_in_lab_toml_decides_before_the_words(home):
    crash = failures_of(NAME_ERRORS, "lock.py")
    assert rank_hints(HINTS, crash, {"write": [2, 1]})[:2] == [2, 1]
    assert rank_hints(HINTS, crash, {"FencedStore.write": [3]})[0] == 3
    stale = [Failure("test_01_write_after_gc_pause", ("stale-write",))]
    assert rank_hints(HINTS, stale, {"stale-write": 2})[0] == 2
    assert rank_hints(HINTS, stale, {"test_01": [3]})[0] == 3
    assert rank_hints(HINTS, stale, {"test_0": [3]})[0] != 3       # a prefix ends at a `_`
    lab = _lab(hint_for={"overlapping-holders": [3, 4]})
    overlap = failures_of(_result(_failed("test_05", OVERLAP, ["overlapping-holders"])))
    assert hint_for_failures(lab, overlap)[0] == 3 and next_hint(lab)[0] == 4
