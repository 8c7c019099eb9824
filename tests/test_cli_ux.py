"""The `splitbrain` command as its users meet it: every --help teaches, every error names what is
wrong and what to do (no traceback, a non-zero exit), --json prints JSON and nothing else, and a
batch stopped with Ctrl-C resumes. Runs on the fixture lab (tests/fixtures/project, 00-counter)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splitbrain.cli import build_parser
from splitbrain.cli._run import child_pids
from splitbrain.lab import LabError, find_lab

FIXTURE = Path(__file__).parent / "fixtures" / "project"
HOSTILE = Path(__file__).parent / "hostile" / "00-counter"
ROOT = Path(__file__).parent.parent


def _subcommands():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sub.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_subcommand_help_has_a_description_an_example_and_explains_every_option(name):
    p = _subcommands()[name]
    assert p.description and len(p.description) > 40, f"{name}: no description"
    assert "examples:\n  splitbrain " + name in p.format_help(), \
        f"{name}: no example"
    for action in p._actions:
        if action.dest == "help":
            continue
        what = "/".join(action.option_strings) or action.dest
        assert action.help, f"`splitbrain {name}`: {what} has no help text"
        takes_value = action.nargs != 0 and action.option_strings
        if takes_value and action.default not in (None, False):
            assert "default" in action.help, f"{name} {action.option_strings}: default not stated"


def test_an_unknown_lab_suggests_the_close_ones():
    for typo, meant in (("fencing", "01-fencing-locks"), ("01-fencing-lock", "01-fencing-locks"),
                        ("ratelimit", "05-rate-limiting")):
        with pytest.raises(LabError, match=f"did you mean {meant}"):
            find_lab(typo, ROOT)
    with pytest.raises(LabError) as e:
        find_lab("42", ROOT)
    assert "did you mean" not in str(e.value) and "01-fencing-locks" in str(e.value)


def _cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


@pytest.fixture
def fixture_env(tmp_path):
    """The fixture lab, a private state dir, and services that do not answer (port 1): the
    errors below are all found before any service is needed."""
    env = {**os.environ, "SPLITBRAIN_ROOT": str(FIXTURE), "SPLITBRAIN_HOME": str(tmp_path / "h"),
           "SPLITBRAIN_REDIS_URL": "redis://127.0.0.1:1/0",
           "SPLITBRAIN_POSTGRES_URL": "postgresql://nobody@127.0.0.1:1/postgres"}
    env.pop("SPLITBRAIN_BACKEND", None)
    return env


def _clean_error(out, code=2):
    assert out.returncode == code, out.stdout + out.stderr
    # progress lines ("starting ...") may come first; the error is a line of its own, no traceback
    assert "Traceback" not in out.stderr and "\nerror: " in "\n" + out.stderr, out.stderr
    return out.stderr


@pytest.mark.parametrize("submission, says", [
    ("nope.py", "does not exist"),
    (str(HOSTILE / "not_json.ipynb"), "not a notebook"),
    (str(HOSTILE / "syntax_error.py"), "syntax error on line 1"),
    (str(HOSTILE / "missing_function.py"), "does not define Counter"),
])
def test_check_rejects_a_bad_submission_before_grading(fixture_env, tmp_path, submission, says):
    out = _cli("check", "00", "--submission", submission, env=fixture_env, cwd=tmp_path)
    assert says in _clean_error(out)
    out = _cli("check", "00", "--submission", submission, "--json", env=fixture_env, cwd=tmp_path)
    data = json.loads(out.stdout)  # JSON and nothing else on stdout
    assert out.returncode == 2 and data["graded"] is False and says in data["error"]


def test_a_notebook_whose_cells_lost_their_tags_and_names_says_how_to_tag(fixture_env, tmp_path):
    nb = json.loads((HOSTILE / "good_untagged.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["source"] = ["print('experiment')\n"]
    (tmp_path / "lab.ipynb").write_text(json.dumps(nb))
    err = _clean_error(_cli("check", "00", "--submission", "lab.ipynb", env=fixture_env,
                            cwd=tmp_path))
    assert "no cell tagged `component`" in err and "Tags" in err


def test_check_with_services_down_does_not_count_the_attempt(fixture_env):
    out = _cli("check", "00", "--json", env=fixture_env)
    assert out.returncode == 3, out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert data["graded"] is False and "does not answer" in data["error"]
    assert "splitbrain status" in data["error"]
    out = _cli("check", "00", env=fixture_env)
    assert "services the grading needs are not available" in _clean_error(out, 3)
    out = _cli("grade", "00", str(HOSTILE / "good_solution.py"), env=fixture_env)
    assert "127.0.0.1:1/postgres does not answer" in _clean_error(out, 3)
    labs = json.loads(_cli("labs", "--json", env=fixture_env).stdout)
    assert labs["labs"][0]["progress"]["attempts"] == 0


def test_unknown_lab_and_bad_grade_arguments_exit_2_with_a_message(fixture_env, tmp_path):
    err = _clean_error(_cli("hint", "counterr", env=fixture_env))
    assert "did you mean 00-counter" in err
    assert json.loads(_cli("check", "x", "--json", env=fixture_env).stdout)["graded"] is False
    sub = str(HOSTILE / "good_solution.py")
    for args, says in ((["--jobs", "0"], "--jobs must be 1 or more"),
                       (["--repeat", "0"], "--repeat must be 1 or more"),
                       (["--format", "pdf"], "unknown format(s) pdf"),
                       (["--format", ","], "names no report")):
        assert says in _clean_error(_cli("grade", "00", sub, *args, env=fixture_env))
    assert "no such file or folder" in _clean_error(
        _cli("grade", "00", str(tmp_path / "missing"), env=fixture_env))


def test_reset_prints_where_the_learners_version_went(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(FIXTURE, copy)
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "handout"], check=True)
    env = {**os.environ, "SPLITBRAIN_ROOT": str(copy), "SPLITBRAIN_HOME": str(tmp_path / "h")}
    (copy / "labs" / "00-counter" / "counter.py").write_text("# mine\n")
    out = _cli("reset", "00", env=env)
    assert out.returncode == 0, out.stderr
    (backup,) = (tmp_path / "h" / "backups" / "00-counter").iterdir()
    assert f"your version is saved as {backup}" in out.stdout and f"cp {backup}" in out.stdout


@pytest.mark.slow
def test_grade_stopped_with_ctrl_c_resumes_where_it_was(services, tmp_path):
    env = {**os.environ, "SPLITBRAIN_ROOT": str(FIXTURE), "SPLITBRAIN_HOME": str(tmp_path / "h"),
           "SPLITBRAIN_REDIS_URL": services.redis_url,
           "SPLITBRAIN_POSTGRES_URL": services.postgres_url}
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(6):
        shutil.copy(FIXTURE / "solutions" / "00-counter" / "counter.py", subs / f"s{i}.py")
    out = tmp_path / "grades"
    args = [sys.executable, "-m", "splitbrain", "grade", "00", str(subs), "--out", str(out),
            "--jobs", "1"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/result.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "Run the same command again" in stderr
    saved = len(list(out.glob("*/result.json")))
    assert 1 <= saved < 6 and not (out / "gradebook.csv").exists()
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("(kept from the last run)") == saved
    assert (out / "gradebook.csv").read_text().count("full marks") == 6
    assert "6 submission(s) of 00-counter: 6 full marks" in again.stderr


def test_ctrl_c_during_check_stops_the_grading_and_does_not_count(services, tmp_path):
    env = {**os.environ, "SPLITBRAIN_ROOT": str(FIXTURE), "SPLITBRAIN_HOME": str(tmp_path / "h"),
           "SPLITBRAIN_REDIS_URL": services.redis_url,
           "SPLITBRAIN_POSTGRES_URL": services.postgres_url}
    # a submission that hangs: each test waits out its 5 s call limit, so the grading is running
    proc = subprocess.Popen([sys.executable, "-m", "splitbrain", "check", "00", "--submission",
                             str(HOSTILE / "infinite_loop.py")], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not child_pids(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "this attempt does not count" in stderr and "Traceback" not in stderr
    assert "score" not in stdout
    labs = json.loads(_cli("labs", "--json", env=env).stdout)
    assert labs["labs"][0]["progress"]["attempts"] == 0


def test_a_folder_per_learner_grades_the_component_not_the_tests_or_the_notebook(tmp_path):
    from splitbrain.grading.submissions import read_batch
    from splitbrain.lab import discover_labs
    (lab,) = discover_labs(FIXTURE)
    batch = tmp_path / "batch"
    for who, files in (("alice", ["counter.py", "test_public.py", "lab.ipynb"]),
                       ("bob", ["mine.py", "conftest.py"]), ("carol", ["lab.ipynb"])):
        (batch / who).mkdir(parents=True)
        for f in files:
            (batch / who / f).write_text("")
    subs, notes = read_batch([str(batch)], lab, tmp_path / "unpacked")
    assert sorted(str(Path(s.path).relative_to(batch)) for s in subs) == [
        "alice/counter.py", "bob/mine.py", "carol/lab.ipynb"]
    assert any("alice/: grading counter.py (left out: lab.ipynb, test_public.py)" in n
               for n in notes), notes


def test_grade_refuses_an_out_folder_that_holds_another_labs_grades(fixture_env, tmp_path):
    out = tmp_path / "grades"
    (out / "alice").mkdir(parents=True)
    (out / "alice" / "result.json").write_text(json.dumps({"lab": "01-fencing-locks"}))
    err = _clean_error(_cli("grade", "00", str(HOSTILE / "good_solution.py"), "--out", str(out),
                            env=fixture_env))
    assert "holds grades of 01-fencing-locks" in err and "--out grades/00-counter" in err
