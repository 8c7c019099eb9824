"""The plugin's verdicts on a throwaway lab without services: per-test wall-clock limit, infra
errors (retried, never charged), default points, and a missing lab."""
import textwrap
from pathlib import Path

import pytest

from splitbrain.grading.runner import grade_submission
from splitbrain.lab import load_lab

TESTS = textwrap.dedent('''
    import time
    import pytest
    from splitbrain.grading.env import InfraError

    @pytest.mark.points(2)
    def test_a_runs_too_long(component):
        time.sleep(30)

    @pytest.mark.points(5)
    def test_b_service_died():
        raise InfraError("redis at 127.0.0.1:1 died")

    @pytest.mark.points(3)
    @pytest.mark.faults("pause")
    def test_c_plain_failure(lab):
        assert lab.slug == "somewhere else", "the slug is wrong"

    def test_d_passes(component, lab, seed):
        assert component.name == "probe.py" and seed == 9
''')


def make_lab(tmp_path: Path) -> Path:
    lab = tmp_path / "labs" / "09-probe"
    lab.mkdir(parents=True)
    (lab / "lab.toml").write_text('format_version = 1\ntitle = "Probe"\nchapter = "c.md"\n'
                                  'component = "probe.py"\nrequires = ["f"]\n'
                                  'test_timeout_s = 1.5\n')
    (lab / "probe.py").write_text("def f():\n    return 1\n")
    hidden = tmp_path / "autograder" / "09-probe"
    hidden.mkdir(parents=True)
    (hidden / "test_probe.py").write_text(TESTS)
    return lab


@pytest.mark.slow
def test_statuses_points_and_infra_errors(tmp_path, monkeypatch):
    lab = load_lab(make_lab(tmp_path), tmp_path)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    r = grade_submission(lab, lab.component_path, seed=9, out_dir=tmp_path / "out")
    assert r.error is None
    by = {t.name: t for t in r.tests}
    assert by["test_a_runs_too_long"].status == "timeout"
    assert "1.5 s limit" in by["test_a_runs_too_long"].message
    assert by["test_b_service_died"].status == "infra_error"
    assert "redis at 127.0.0.1:1 died" in by["test_b_service_died"].message
    c = by["test_c_plain_failure"]
    assert c.status == "failed" and "the slug is wrong" in c.message and c.faults == ("pause",)
    d = by["test_d_passes"]
    assert d.status == "passed" and d.points == d.max_points == 1
    assert (r.score, r.max_score, r.infra_errors) == (1, 6, 1)  # infra_error is not charged


def test_a_lab_without_tests_is_a_clear_error(tmp_path, monkeypatch):
    lab_dir = make_lab(tmp_path)
    (tmp_path / "autograder" / "09-probe" / "test_probe.py").unlink()
    lab = load_lab(lab_dir, tmp_path)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    r = grade_submission(lab, lab.component_path, out_dir=tmp_path / "out")
    assert r.error and "has no tests" in r.error and r.tests == ()


NET_TESTS = textwrap.dedent('''
    import pytest
    from splitbrain.sandbox import Ref, RemoteError

    @pytest.mark.faults("partition")
    def test_proxy_partition_is_recorded(spawn, proxy, nemesis, history, ns):
        p = proxy("redis")
        assert p.url != ns.redis_url and str(p.port) in p.url
        assert p.url.rpartition("@")[0] == ns.redis_url.rpartition("@")[0]  # the test's user
        w = spawn("a", resources=p.resources)
        box = w.new("Box", Ref("redis", socket_timeout=0.5), ns.key("k"))
        assert box.bump() == 1
        with nemesis.fault("partition", p):
            with pytest.raises(RemoteError) as e:
                box.bump()
            assert "Timeout" in e.value.type
        ops = [op.type for op in history.operations()]
        assert ops[:2] == ["ok", "info"]  # a timed-out call's outcome is unknown
        assert [(e.f, e.value["phase"]) for e in history.faults()] == [
            ("partition", "start"), ("partition", "end")]

    def test_nemesis_pauses_a_worker(spawn, nemesis, history, ns):
        w = spawn("b")
        box = w.new("Box", Ref("redis"), ns.key("k"))
        with nemesis.fault("pause", w):
            fut = box.bump.async_()
        assert fut.result(timeout=10) == 1
        assert [e.f for e in history.faults()] == ["pause", "pause"]

    @pytest.mark.faults("pause", "kill")
    def test_declares_a_fault_it_never_injects(spawn, nemesis, history, ns):
        w = spawn("c")
        with nemesis.fault("pause", w):
            pass
''')


def test_proxy_and_nemesis_fixtures(tmp_path, monkeypatch, services):
    lab_dir = tmp_path / "labs" / "08-net"
    lab_dir.mkdir(parents=True)
    (lab_dir / "lab.toml").write_text('format_version = 1\ntitle = "Net"\nchapter = "c.md"\n'
                                      'component = "box.py"\nrequires = ["Box"]\n'
                                      'services = ["redis"]\n')
    (lab_dir / "box.py").write_text(
        "class Box:\n    def __init__(self, redis, key):\n        self.r, self.k = redis, key\n"
        "    def bump(self):\n        return self.r.incr(self.k)\n")
    hidden = tmp_path / "autograder" / "08-net"
    hidden.mkdir(parents=True)
    (hidden / "test_net.py").write_text(NET_TESTS)
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    lab = load_lab(lab_dir, tmp_path)
    r = grade_submission(lab, lab.component_path, out_dir=tmp_path / "out")
    assert r.error is None, r.error
    assert [(t.name, t.status) for t in r.tests] == [
        ("test_proxy_partition_is_recorded", "passed"), ("test_nemesis_pauses_a_worker", "passed"),
        ("test_declares_a_fault_it_never_injects", "error")], [t.message for t in r.tests]
    assert "declares faults ['kill'] that it never injected" in r.tests[2].message
    assert [t.faults for t in r.tests] == [("partition",), ("pause",), ("pause", "kill")]


RIG_TESTS = textwrap.dedent('''
    import pytest
    import rig                                  # loaded by the plugin from labs/NN-slug/rig
    from rig.world import make
    from splitbrain.sandbox import Ref

    @pytest.mark.faults("jam")
    def test_the_rig_in_the_grader_and_in_the_worker(spawn, nemesis, history, ns):
        assert rig.WHERE == "the rig" and make({}) == "made here"
        w = spawn("a")
        box = w.new("Box", Ref("rig.world:make"))
        assert box.what() == "made here"
        assert w.call("rig.world:ask", box) == "asked: made here"   # a helper beside the component
        nemesis.inject("jam", w).heal()

    @pytest.mark.faults("no-such-fault")
    def test_unknown_fault_names_are_refused():
        pass
''')


def test_a_lab_rig_is_loaded_for_its_tests_and_workers_and_registers_faults(tmp_path, monkeypatch,
                                                                           services):
    lab_dir = tmp_path / "labs" / "09-rigged"
    (lab_dir / "rig").mkdir(parents=True)
    (lab_dir / "lab.toml").write_text('format_version = 1\ntitle = "Rigged"\nchapter = "c.md"\n'
                                      'component = "box.py"\nservices = ["redis"]\n')
    (lab_dir / "box.py").write_text("class Box:\n    def __init__(self, thing):\n"
                                    "        self.thing = thing\n"
                                    "    def what(self):\n        return self.thing\n")
    (lab_dir / "rig" / "__init__.py").write_text('WHERE = "the rig"\n')
    (lab_dir / "rig" / "world.py").write_text("def make(resources):\n    return 'made here'\n"
                                              "def ask(box):\n    return 'asked: ' + box.what()\n")
    (lab_dir / "rig" / "faults.py").write_text(textwrap.dedent('''
        from splitbrain.faults.registry import Condition, register

        @register
        class Jam(Condition):
            name = "jam"
            description = "the lab's own fault"
    '''))
    hidden = tmp_path / "autograder" / "09-rigged"
    hidden.mkdir(parents=True)
    (hidden / "test_rig.py").write_text(RIG_TESTS)
    (hidden / "conftest.py").write_text("import rig  # loaded before any conftest\n"
                                        "assert rig.WHERE == 'the rig'\n")
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    lab = load_lab(lab_dir, tmp_path)
    r = grade_submission(lab, lab.component_path, out_dir=tmp_path / "out")
    assert r.error is None, r.error
    assert [(t.name, t.status) for t in r.tests] == [
        ("test_the_rig_in_the_grader_and_in_the_worker", "passed"),
        ("test_unknown_fault_names_are_refused", "error")], [t.message for t in r.tests]
    assert "names ['no-such-fault'], which the fault registry does not know" in r.tests[1].message


def test_a_service_that_dies_mid_test_is_infra_error(tmp_path, monkeypatch):
    from splitbrain.services import spawn_redis
    server = spawn_redis()
    lab_dir = tmp_path / "labs" / "07-dies"
    lab_dir.mkdir(parents=True)
    (lab_dir / "lab.toml").write_text('format_version = 1\ntitle = "Dies"\nchapter = "c.md"\n'
                                      'component = "c.py"\nservices = ["redis"]\n')
    (lab_dir / "c.py").write_text("X = 1\n")
    hidden = tmp_path / "autograder" / "07-dies"
    hidden.mkdir(parents=True)
    (hidden / "test_dies.py").write_text(textwrap.dedent('''
        import redis
        import pytest

        @pytest.mark.points(4)
        def test_server_goes_away(services):
            try:
                redis.Redis.from_url(services.redis_url).shutdown(nosave=True)
            except redis.ConnectionError:
                pass
            assert False, "the submission is not to blame"

        def test_fine():
            pass
    '''))
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(tmp_path))
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", server.url)
    try:
        r = grade_submission(load_lab(lab_dir, tmp_path), lab_dir / "c.py", out_dir=tmp_path / "o")
    finally:
        server.close()
    died, fine = r.tests
    assert died.status == "infra_error" and "redis" in died.message, died
    assert fine.status == "passed" and (r.score, r.max_score) == (1, 1)
