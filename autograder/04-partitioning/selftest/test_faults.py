"""Lab 04's own faults (rig.faults): registered with the kit, recorded by the nemesis, and acting
on a test's shards (here with stand-in shard servers, so no Redis is started)."""
from __future__ import annotations

import pytest

from rig import partitioning as part
from splitbrain.faults import Nemesis
from splitbrain.faults.registry import FAULTS, FaultError
from splitbrain.history import History

LAB_FAULTS = ("add-shard", "remove-shard", "hash-seed", "skewed-keys", "stale-map",
              "other-shard-list")


class FakeServer:
    def __init__(self, n: int) -> None:
        self.url = f"redis://127.0.0.1:{7000 + n}/0"
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def shards(monkeypatch):
    import splitbrain.services
    started: list[FakeServer] = []

    def spawn_redis():
        started.append(FakeServer(len(started)))
        return started[-1]

    monkeypatch.setattr(splitbrain.services, "spawn_redis", spawn_redis)
    return part.Shards.start(4)


def test_the_lab_faults_are_registered_with_a_description():
    for name in LAB_FAULTS:
        assert name in FAULTS, name
        assert FAULTS[name].description
    assert {FAULTS[n].kind for n in ("hash-seed", "skewed-keys", "stale-map")} == {"condition"}


def test_add_shard_starts_the_shard_and_is_recorded_under_its_name(shards):
    h = History()
    nemesis = Nemesis(h)
    added = nemesis.inject("add-shard", shards.shard("s4"))
    assert shards.live == ["s0", "s1", "s2", "s3", "s4"]
    added.heal()
    assert shards.live == ["s0", "s1", "s2", "s3", "s4"]      # the shard stays
    assert [(w.name, w.target, w.end is not None) for w in h.fault_windows()] == [
        ("add-shard", "s4", True)]
    again = nemesis.inject("add-shard", shards.shard("s4"))  # provisioned: joins, no new server
    again.heal()
    assert shards.live == ["s0", "s1", "s2", "s3", "s4"]
    with pytest.raises(FaultError, match="add-shard"):
        nemesis.inject("add-shard", shards)
    with nemesis.fault("remove-shard", shards.shard("s4")):
        pass
    with pytest.raises(FaultError, match="add-shard"):         # shut down for good
        nemesis.inject("add-shard", shards.shard("s4"))


def test_remove_shard_shuts_the_shard_down_when_healed(shards):
    h = History()
    nemesis = Nemesis(h)
    with nemesis.fault("remove-shard", shards.shard("s3")):
        assert shards.live == ["s0", "s1", "s2", "s3"]
    assert shards.live == ["s0", "s1", "s2"]
    assert shards.handles["s3"].stopped
    assert [(e.f, e.value["phase"], e.value["target"]) for e in h.faults()] == [
        ("remove-shard", "start", "s3"), ("remove-shard", "end", "s3")]
    with pytest.raises(FaultError, match="remove-shard"):      # not running any more
        nemesis.inject("remove-shard", shards.shard("s3"))


def test_conditions_record_what_held():
    from splitbrain.sandbox import hash_seed

    class W:
        def __init__(self, name):
            self.name, self.seed = name, 1

    h = History()
    nemesis = Nemesis(h)
    with nemesis.fault("hash-seed", workers=[W("a"), W("b")]):
        pass
    start = h.faults()[0].value
    assert start["processes"] == "a, b"
    assert start["seeds"] == f"{hash_seed(1, 'a')}, {hash_seed(1, 'b')}"
    with pytest.raises(FaultError, match="hash-seed"):
        nemesis.inject("hash-seed", workers=[W("a")])          # one process is no condition
    with nemesis.fault("skewed-keys", keys=1000, seed=3):
        pass
    with nemesis.fault("stale-map", W("a")):
        pass
    with pytest.raises(FaultError, match="stale-map"):
        nemesis.inject("stale-map")
    assert [(w.name, w.target) for w in h.fault_windows()] == [
        ("hash-seed", None), ("skewed-keys", None), ("stale-map", "a")]
