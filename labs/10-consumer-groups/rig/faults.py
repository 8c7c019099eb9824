"""Lab 10's own fault: a slow record.

One record whose effect takes long: a call to a slow service, a big row, a lock it waits for.
With ``ms`` the grader writes ``count`` records that take ``ms`` each to apply (an instant: they
are on the topic). Without it the grader writes one record held at a gate (a Postgres advisory
lock it holds): the member that reaches it is stuck inside that record, mid-batch, until the
fault heals, while its consumer's background threads run on (heartbeats, auto-commits).
"""
from __future__ import annotations

from splitbrain.faults.registry import Fault, FaultError, register

__all__ = ["SlowRecord"]


@register
class SlowRecord(Fault):
    """Params: ``partition`` (default 0); ``ms`` and ``count`` (default 1) for records that take
    ``ms`` each, or nothing for one record held at a gate until healed (``target.gate`` is it)."""

    name = "slow-record"
    kind = "delivery"
    description = ("a record whose effect takes long to apply: `ms` each, or held mid-batch "
                   "until healed, while the consumer's heartbeats go on")
    needs = "slow(partition, ms, count) and open() (a rig.world.Feed: the grader's producer)"

    @property
    def instant(self) -> bool:  # type: ignore[override]
        return bool(self.params.get("ms"))

    def check(self) -> None:
        if not callable(getattr(self.target, "slow", None)) or \
                not callable(getattr(self.target, "open", None)):
            self._fail()
        for key in ("partition", "ms", "count"):
            v = self.params.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise FaultError(f"slow-record: {key} is an int >= 0, got {v!r}")

    def _inject(self) -> None:
        self.gate = self.target.slow(int(self.params.get("partition", 0)),
                                     self.params.get("ms"), int(self.params.get("count", 1)))
        self.target.gate = self.gate

    def _heal(self) -> None:
        if getattr(self, "gate", None) is not None:
            self.gate.open()
