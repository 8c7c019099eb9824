"""The faults only lab 04 has, registered in the kit's fault registry when the rig is loaded.

Two act on a test's shard servers (a :class:`rig.partitioning.Shard`, from ``shards.shard("s4")``):

* ``add-shard``: the shard joins the cluster; its server starts when the fault is injected
  unless the test provisioned it before (to put a fault proxy in front of it); the window lasts
  until the test heals it, once the rebalance onto the new shard set is over. ::

      added = nemesis.inject("add-shard", shards.shard("s4"))
      store.rebalance(shards.urls())
      added.heal()

* ``remove-shard``: injected when the shard leaves the shard set (the rebalance that drains it
  starts); healing it shuts the shard's server down for good, as an operator decommissions a shard
  as soon as the rebalance says it is empty. ::

      with nemesis.fault("remove-shard", shards.shard("s4")):
          store.rebalance(shards.urls(["s0", "s1", "s2", "s3"]))
      # s4 is stopped here: what it still held is gone

Four are conditions of the scenario (injecting them changes nothing; they are recorded around the
part of the test where they hold, so the picture shades it and the report names it):

* ``hash-seed``: several worker processes, each with its own PYTHONHASHSEED, use the store
  (param ``workers``: the sandboxed workers; the record lists them with their seeds);
* ``skewed-keys``: the keys written follow a Zipf law over their tenants (params ``keys``,
  ``seed``);
* ``stale-map``: a process (the target, a worker) that loaded the shard map before a rebalance
  keeps using the store while the rebalance runs;
* ``other-shard-list``: a process (the target, a worker) joins the store configured with a shard
  list other than the cluster's.

The kit's ``stall`` fault holds one process's next request (or reply) on one of its links
(``rig.links``), which is how the tests place a pause exactly between two round trips.
"""
from __future__ import annotations

from typing import Any

from splitbrain.faults.registry import Condition, Fault, register

__all__ = ["AddShard", "RemoveShard", "HashSeed", "SkewedKeys", "StaleMap", "OtherShardList"]


def _is_shard(target: Any) -> bool:
    return (isinstance(getattr(target, "name", None), str) and hasattr(target, "running")
            and callable(getattr(target, "start", None))
            and callable(getattr(target, "stop", None)))


@register
class AddShard(Fault):
    name = "add-shard"
    kind = "service"
    description = "a shard server added to the cluster while the store is in use"
    needs = ("a shard that is not shut down (rig.partitioning.Shards.shard(name)); its server "
             "starts now unless it was provisioned before")

    def check(self) -> None:
        if not _is_shard(self.target) or (self.target.started and not self.target.running):
            self._fail()

    def _inject(self) -> None:
        if not self.target.started:
            self.target.start()

    def _heal(self) -> None:
        pass  # the shard stays: the window ends when the move onto it is over


@register
class RemoveShard(Fault):
    name = "remove-shard"
    kind = "service"
    description = "a shard removed, then shut down as soon as the rebalance says it is empty"
    needs = "a running shard (rig.partitioning.Shards.shard(name))"

    def check(self) -> None:
        if not _is_shard(self.target) or not self.target.running:
            self._fail()

    def _inject(self) -> None:
        pass  # the test's rebalance takes the shard out of the shard set

    def _heal(self) -> None:
        self.target.stop()


@register
class HashSeed(Condition):
    """Param ``workers``: the sandboxed workers (two or more) that use the store meanwhile."""
    name = "hash-seed"
    description = "every worker process runs with its own PYTHONHASHSEED, as separate processes do"
    needs = "workers=[two or more sandboxed workers]"

    def check(self) -> None:
        workers = self.params.get("workers")
        if not isinstance(workers, (list, tuple)) or len(workers) < 2 or not all(
                isinstance(getattr(w, "name", None), str) for w in workers):
            self._fail()

    def describe(self) -> dict[str, Any]:
        from splitbrain.sandbox import hash_seed
        d = super().describe()
        workers = self.params["workers"]
        d["processes"] = ", ".join(w.name for w in workers)
        d["seeds"] = ", ".join(str(hash_seed(getattr(w, "seed", 0), w.name)) for w in workers)
        return d


@register
class SkewedKeys(Condition):
    name = "skewed-keys"
    description = "keys with long shared prefixes whose tenants follow a Zipf law"


@register
class OtherShardList(Condition):
    """Target: the worker started with a shard list that is not the cluster's (param ``listed``:
    the shard names it was given)."""
    name = "other-shard-list"
    description = ("a process joins the store configured with a shard list that differs from the "
                   "cluster's (an old or a newer config file)")
    needs = "the process started with the other list (a sandboxed worker)"

    def check(self) -> None:
        if not isinstance(getattr(self.target, "name", None), str):
            self._fail()


@register
class StaleMap(Condition):
    name = "stale-map"
    description = "a process that loaded the shard map before a rebalance and never reloads it"
    needs = "the process that holds the old map (a sandboxed worker)"

    def check(self) -> None:
        if not isinstance(getattr(self.target, "name", None), str):
            self._fail()
