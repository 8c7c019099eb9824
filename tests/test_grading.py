"""The grader end to end on the fixture lab (tests/fixtures/project, lab 00-counter): the runner,
results, reports, submissions and verify, against the session's real Redis."""
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree as ET

import pytest

from splitbrain.grading import reports
from splitbrain.grading.results import GradingResult, TestResult
from splitbrain.grading.runner import grade_batch, grade_submission
from splitbrain.grading.submissions import SubmissionError, component_file, expand
from splitbrain.grading.verify import verify_lab
from splitbrain.lab import discover_labs

FIXTURE = Path(__file__).parent / "fixtures" / "project"
HOSTILE = Path(__file__).parent / "hostile" / "00-counter"


@pytest.fixture
def grading_env(services, monkeypatch, tmp_path):
    """The grading subprocesses use this session's services and a private state dir."""
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", services.postgres_url)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(FIXTURE))
    monkeypatch.setenv("SPLITBRAIN_HOME", str(tmp_path / "home"))
    (lab,) = discover_labs(FIXTURE)
    return lab


@pytest.mark.slow
def test_broken_fails_with_the_taught_anomaly_solution_passes(grading_env, tmp_path):
    lab = grading_env
    broken = grade_submission(lab, lab.component_path, seed=3, out_dir=tmp_path / "b")
    d = broken.to_dict()
    assert {"lab", "submission", "seed", "score", "max_score", "tests"} <= set(d)
    assert (d["lab"], d["seed"], d["score"], d["max_score"]) == ("00-counter", 3, 10, 30)
    t1, t2, t3 = d["tests"]
    assert set(t1) >= {"name", "points", "max_points", "status", "message", "faults", "history"}
    assert t1["name"] == "test_01_one_worker_counts" and t1["status"] == "passed"
    assert t2["status"] == "failed" and t2["anomalies"] == ["lost-update"]
    assert "[lost-update]" in t2["message"] and "--seed 3" in t2["message"]
    assert "hint: Two workers read" in t2["message"] and t2["faults"] == ["concurrency"]
    assert Path(t2["history"]).is_file()
    assert t3["name"] == "test_03_seeded_pauses_lose_nothing" and t3["max_points"] == 0
    good = grade_submission(lab, lab.solution_path, seed=3, out_dir=tmp_path / "s")
    assert good.full_marks and good.score == good.max_score == 30


def test_the_callers_pytest_options_do_not_reach_a_grading(grading_env, tmp_path, monkeypatch):
    """A PYTEST_ADDOPTS in the learner's or instructor's shell (here a report the grading cannot
    write, and a stop at the first failure) changes nothing in a grade."""
    lab = grading_env
    monkeypatch.setenv("PYTEST_ADDOPTS", f"-x --junitxml={tmp_path}/no/such/dir/x.xml")
    monkeypatch.setenv("PYTEST_PLUGINS", "no_such_plugin_module")
    (tmp_path / "no").mkdir()
    (tmp_path / "no").chmod(0o500)
    r = grade_submission(lab, lab.component_path, seed=3, out_dir=tmp_path / "b")
    # all three tests ran (-x would have stopped after test_02) and graded as without the options
    assert r.error is None and [t.status for t in r.tests] == ["passed", "failed", "failed"]
    assert r.score == 10


@pytest.mark.slow
def test_tests_dealt_to_two_processes_give_the_same_grade_in_the_same_order(grading_env, tmp_path):
    """`check` deals one grading's tests out to two pytest processes, one test function at a time
    (the fixture lab's three tests sit in one file): the verdicts, points and order are those of
    a single process."""
    lab = grading_env
    one = grade_submission(lab, lab.component_path, seed=3, out_dir=tmp_path / "one")
    two = grade_submission(lab, lab.component_path, seed=3, out_dir=tmp_path / "two", jobs=2)
    assert [(t.name, t.status, t.points) for t in two.tests] == \
        [(t.name, t.status, t.points) for t in one.tests]
    assert [t.name for t in two.tests] == ["test_01_one_worker_counts",
                                           "test_02_two_workers_do_not_lose_increments",
                                           "test_03_seeded_pauses_lose_nothing"]


def test_a_file_of_tests_is_dealt_out_one_function_at_a_time(tmp_path):
    from splitbrain.grading.runner import _split
    a = tmp_path / "test_a.py"
    a.write_text("def test_1(): pass\n\ndef helper(): pass\n\ndef test_2(): pass\n\n"
                 "async def test_3(): pass\n")
    b = tmp_path / "test_b.py"
    b.write_text("class TestX:\n    def test_x(self): pass\n")
    c = tmp_path / "test_c.py"
    c.write_text("def test_(:\n")
    assert _split([a, b, c], 2) == [[f"{a}::test_1", f"{a}::test_3", str(c)],
                                    [f"{a}::test_2", str(b)]]
    assert _split([a], 1) == [[f"{a}::test_1", f"{a}::test_2", f"{a}::test_3"]]
    assert _split([b], 4) == [[str(b)]]



def test_known_durations_put_the_longest_tests_in_different_processes(tmp_path):
    """Dealt in turn, the two long tests of this file would share a process and the grading
    would last as long as both; by duration, each gets its own and the short ones fill in."""
    from splitbrain.grading.runner import _split
    a = tmp_path / "test_a.py"
    a.write_text("".join(f"def test_{i}(): pass\n" for i in range(1, 6)))
    nodes = [f"{a}::test_{i}" for i in range(1, 6)]
    assert _split([a], 2) == [nodes[0::2], nodes[1::2]]
    durations = {"test_1": 4.0, "test_3": 4.0, "test_2": 1.0, "test_4": 1.0}   # test_5: 2.5
    groups = _split([a], 2, durations)
    assert groups == [[nodes[0], nodes[4]], [nodes[1], nodes[2], nodes[3]]]   # 6.5 s and 6 s
    assert sorted(n for g in groups for n in g) == nodes   # every test once, each in file order
    assert _split([a], 2, {}) == _split([a], 2)


def test_durations_are_recorded_from_gradings_and_read_back(tmp_path):
    from splitbrain.grading.runner import expected_durations, record_durations
    lab = SimpleNamespace(autograder_dir=tmp_path)
    assert expected_durations(lab) == {}
    runs = [GradingResult("00-counter", "s.py", 1, (TestResult("test_a", 1, 1, "passed",
                                                                duration_s=d),))
            for d in (3.0, 1.0, 2.0)]
    record_durations(lab, runs)
    assert expected_durations(lab) == {"test_a": 2.0}
    (tmp_path / "durations.json").write_text('{"test_a": "slow", "test_b": -1, "test_c": 1.5}')
    assert expected_durations(lab) == {"test_c": 1.5}
    (tmp_path / "durations.json").write_text("[1, 2]")
    assert expected_durations(lab) == {}

def test_results_render_to_every_format(tmp_path):
    r = GradingResult("00-counter", "/x/alice.py", 1, (
        TestResult("test_a", 10, 10, "passed"),
        TestResult("test_b", 0, 20, "failed", "[lost-update] gone", ("pause",), hidden=True),
        TestResult("test_c", 0, 5, "infra_error", "redis died")), duration_s=2.5)
    assert (r.score, r.max_score, r.infra_errors) == (10, 30, 1)
    gs = r.to_gradescope_dict()
    assert gs["score"] == 10 and gs["tests"][1]["visibility"] == "after_published"
    assert gs["tests"][1]["max_score"] == 20 and gs["tests"][1]["status"] == "failed"
    assert GradingResult.from_dict(r.to_dict()).to_dict() == r.to_dict()
    junit = ET.fromstring(reports.to_junit([r]))
    suite = junit.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "1"
    rows = reports.to_csv([r]).splitlines()
    assert rows[0] == "submission,lab,seed,score,max_score,status,test_a,test_b,test_c"
    assert rows[1].endswith("10,30,infra_error,10,0,infra_error")
    written = reports.write_reports([r], tmp_path, ["json", "junit", "gradescope", "csv"])
    assert {p.name for p in written} == {"results.json", "junit.xml", "results.json",
                                         "gradebook.csv"}
    with pytest.raises(ValueError, match="unknown report format"):
        reports.write_reports([r], tmp_path, ["pdf"])
    with pytest.raises(ValueError, match="status must be one of"):
        TestResult("t", 0, 1, "exploded")


def test_notebook_submissions(tmp_path):
    (lab,) = discover_labs(FIXTURE)
    tagged = component_file(HOSTILE / "good_tagged.ipynb", lab, tmp_path / "t")
    untagged = component_file(HOSTILE / "good_untagged.ipynb", lab, tmp_path / "u")
    for p in (tagged, untagged):
        src = p.read_text()
        assert p.name == "counter.py" and "class Counter" in src
        assert "splitbrain check" not in src and "c.increment()" not in src
    with pytest.raises(SubmissionError, match="not a notebook"):
        component_file(HOSTILE / "not_json.ipynb", lab, tmp_path)
    with pytest.raises(SubmissionError, match="does not define Counter"):
        component_file(HOSTILE / "missing_function.py", lab, tmp_path)
    with pytest.raises(SubmissionError, match="syntax error on line 1"):
        component_file(HOSTILE / "syntax_error.py", lab, tmp_path)
    with pytest.raises(SubmissionError, match="no such file"):
        component_file(tmp_path / "nothing.py", lab, tmp_path)
    assert len(expand([HOSTILE])) == len(list(HOSTILE.glob("*.py")) + list(HOSTILE.glob("*.ipynb")))


@pytest.mark.slow
def test_batch_is_resumable_and_reports_are_written(grading_env, tmp_path):
    lab = grading_env
    subs = tmp_path / "subs"
    for who, src in (("alice", lab.solution_path), ("bob", lab.component_path)):
        (subs / who).mkdir(parents=True)
        shutil.copy(src, subs / who / "counter.py")
    seen = []
    results = grade_batch(lab, expand([subs]), tmp_path / "out", jobs=2,
                          on_done=lambda r, reused: seen.append(reused))
    assert [r.score for r in results] == [30, 10] and seen == [False, False]
    assert (tmp_path / "out" / "alice-counter" / "result.json").is_file()
    again = grade_batch(lab, expand([subs]), tmp_path / "out", jobs=2,
                        on_done=lambda r, reused: seen.append(reused))
    assert seen[2:] == [True, True] and [r.to_dict()["score"] for r in again] == [30, 10]
    reports.write_reports(again, tmp_path / "out")
    assert "alice" in (tmp_path / "out" / "gradebook.csv").read_text()
    assert (tmp_path / "out" / "gradescope" / "bob-counter" / "results.json").is_file()


@pytest.mark.slow
def test_verify_proves_the_fixture_lab_and_refuses_a_broken_solution(grading_env, tmp_path):
    proof = verify_lab(grading_env, out_dir=tmp_path / "v")
    assert proof.proves, proof.problems
    assert proof.to_dict()["broken"] == {"score": 10, "max_score": 30,
                                         "anomalies": ["lost-update"]}
    copy = tmp_path / "project"
    shutil.copytree(FIXTURE, copy)
    wrong = (copy / "labs/00-counter/counter.py").read_text() + "# a solution that is not one\n"
    (copy / "solutions/00-counter/counter.py").write_text(wrong)
    (bad,) = discover_labs(copy)
    proof = verify_lab(bad, out_dir=tmp_path / "v2")
    assert not proof.proves
    (lost,) = [p for p in proof.problems if "the solution loses points" in p]
    assert "anomalies ['lost-update']; grader said: " in lost     # why, not only which test


def test_verify_says_what_an_incomplete_lab_lacks_and_grades_nothing(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(FIXTURE, copy)
    (copy / "docs/chapters/00-counter.md").unlink()
    nb = copy / "labs/00-counter/lab.ipynb"
    data = json.loads(nb.read_text())
    data["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    nb.write_text(json.dumps(data))
    (lab,) = discover_labs(copy)
    proof = verify_lab(lab, out_dir=tmp_path / "v")
    assert not proof.proves and not proof.complete and proof.broken is None
    text = "\n".join(proof.problems)
    assert "not complete: the chapter: write docs/chapters/00-counter.md" in text
    assert "the notebook is committed without outputs" in text


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_cli_labs_check_hint_verify(grading_env, tmp_path):
    out = _cli("labs", "--json")
    assert json.loads(out.stdout)["labs"][0]["lab"] == "00-counter"
    out = _cli("check", "00-counter", "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["score"] == 10
    assert data["hint"].startswith("Two workers") and data["progress"]["attempts"] == 1
    out = _cli("hint", "00")
    assert out.stdout.startswith("hint 2/2: Redis has a command")
    sol = FIXTURE / "solutions" / "00-counter" / "counter.py"
    out = _cli("check", "00", "--submission", str(sol.relative_to(FIXTURE)), cwd=FIXTURE)
    assert out.returncode == 0 and "passes every test" in out.stdout
    assert json.loads(_cli("labs", "--json").stdout)["labs"][0]["progress"]["done"] is True
    out = _cli("verify", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    (entry,) = json.loads(out.stdout)["labs"]
    assert entry["lab"] == "00-counter" and entry["proves"] is True
    assert entry["solution"] == {"score": 30, "max_score": 30}
    out = _cli("grade", "00", str(HOSTILE / "empty.py"), "--out", str(tmp_path / "g"),
               "--format", "csv")
    assert out.returncode == 0 and (tmp_path / "g" / "gradebook.csv").is_file()
    assert _cli("check", "nope").returncode == 2


def test_reset_restores_the_handout_and_keeps_the_learners_work(tmp_path, monkeypatch):
    copy = tmp_path / "project"
    shutil.copytree(FIXTURE, copy)
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "handout"], check=True)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(copy))
    monkeypatch.setenv("SPLITBRAIN_HOME", str(tmp_path / "home"))
    mine = copy / "labs" / "00-counter" / "counter.py"
    handout = mine.read_text()
    mine.write_text("# my half-finished fix\n")
    out = _cli("reset", "00-counter")
    assert out.returncode == 0, out.stderr
    assert mine.read_text() == handout
    (backup,) = (tmp_path / "home" / "backups" / "00-counter").iterdir()
    assert backup.read_text() == "# my half-finished fix\n"
