"""Mutation testing of a lab's hidden tests: the mutants a solution gets, and a run on the
fixture lab that counts killed, surviving and equivalent mutants."""
import shutil
from pathlib import Path

import pytest

from splitbrain.grading.mutants import MutantsFileError, load_equivalents, run_mutants
from splitbrain.grading.mutate import mutants
from splitbrain.lab import load_lab

FIXTURE = Path(__file__).parent / "fixtures" / "project"

SOURCE = '''"""A module docstring: never mutated."""
LUA = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return 1
end
"""
SQL = ("UPDATE t SET v = %s "
       "WHERE t.token <= %s "
       "RETURNING 1")


def f(a, b, conn):
    """Docstring."""
    if a < b and not a:
        conn.commit()
    try:
        return conn.execute(SQL, (a, b), prepare=True)
    except OSError:
        return 3
'''


def test_each_operator_makes_its_mutants_and_ids_are_stable():
    ms = mutants(SOURCE)
    ops = {m.operator for m in ms}
    assert ops == {"compare", "bool", "negate-if", "drop-call", "drop-kwarg", "return-none",
                   "raise-in-except", "number", "script"}
    changes = {(m.operator, m.before.strip(), m.after.strip()) for m in ms}
    assert ("compare", "<", "<=") in changes and ("bool", "and", "or") in changes
    assert ("script", ", 'NX'", "") in changes and ("script", "==", "~=") in changes
    assert ("script", "<=", "<") in changes and ("drop-call", "conn.commit()", "pass") in changes
    assert ("drop-kwarg", ", prepare=True", "") in changes
    assert ("script", "\"WHERE t.token <= %s \"", "") in changes
    assert not any("docstring" in m.before.lower() for m in ms)
    for m in ms:
        compile(m.source, "m", "exec")
    assert len({m.id for m in ms}) == len(ms)
    again = mutants("# a comment added above\n" + SOURCE)
    assert {m.id for m in again} == {m.id for m in ms}     # ids do not depend on line numbers


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return load_lab(root / "labs" / "00-counter", root)


def test_equivalents_are_read_and_checked(lab):
    (lab.autograder_dir / "mutants.toml").write_text('[[equivalent]]\nid = "nope"\nwhy = "x"\n')
    with pytest.raises(MutantsFileError, match="id`: string should match"):
        load_equivalents(lab)
    (lab.autograder_dir / "mutants.toml").write_text(
        '[[equivalent]]\nid = "number:abcdef:0"\nwhy = "the same value either way"\n')
    assert load_equivalents(lab) == {"number:abcdef:0": "the same value either way"}


@pytest.mark.slow
def test_mutants_of_the_fixture_lab_are_killed_or_survive(lab, services, monkeypatch, tmp_path):
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(lab.root))
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", services.postgres_url)
    ms = mutants(lab.solution_path.read_text())
    # `get(key) or 0` -> `or 1`: the key always exists by the time value() reads it
    survivor = next(m for m in ms if m.operator == "number" and m.after == "1")
    (lab.autograder_dir / "mutants.toml").write_text(
        f'[[equivalent]]\nid = "{survivor.id}"\nwhy = "the key exists whenever it is read"\n'
        f'[[equivalent]]\nid = "compare:000000:0"\nwhy = "gone since"\n')
    report = run_mutants(lab, out_dir=tmp_path / "m")
    by = {o.name: o for o in report.outcomes}
    assert by[survivor.id].status == "equivalent"
    assert by["variant wrong_get_then_set"].status == "killed"
    assert report.stale == ["compare:000000:0"] and not report.meets_target
    killed = [o for o in report.outcomes if o.status == "killed"]
    assert killed and all(o.killed_by for o in killed)
    assert report.count("unknown") == 0
    assert 0 < report.kill_rate <= 1 and "of mutants killed" in report.summary()
