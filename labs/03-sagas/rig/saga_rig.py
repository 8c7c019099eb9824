"""The rig of lab 03, shared by the hidden tests, the public tests and the notebook.

``SagaRig`` holds the participants (in this process) and one sandboxed worker running the
learner's ``Orchestrator``. It books orders, kills the orchestrator at the moment a participant
receives or commits a call, restarts it and runs ``recover()``, makes participants lose answers,
answer 503 or decline, delivers bookings twice, and judges every saga from the participants' own
ledgers (never from what the orchestrator says about itself). Every fault goes through the
nemesis, which records it in the history.

```python
rig = SagaRig.open(ns, spawn, history, nemesis)  # participants + worker, standard shop
rig.book("s1", rig.order())                      # a saga that can complete
rig.crash("payment.charge", "after", "s2")       # kill the orchestrator right after the charge
rig.book("s2", rig.order())                      # -> None: the orchestrator died
rig.restart_and_recover()
rig.lose_reply("payment.refund", "s3")           # the nemesis's "lost-reply" on payment
with nemesis.fault("duplicate", rig.bookings, p=1.0):
    rig.book("s4", rig.order())                  # delivered twice
verdict = rig.judge()
```
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from rig import faults as _faults  # noqa: F401  (the faults the rig injects, also in a notebook)
from rig.checkers import check_saga_ledger
from rig.saga import OPERATIONS
from rig.saga_server import Participants
from splitbrain.checkers.base import Anomaly, Verdict
from splitbrain.faults.registry import Fault
from splitbrain.history import History

__all__ = ["SagaRig", "Bookings", "STOCK", "ACCOUNTS", "BLOCKED", "POOR", "SCARCE"]

#: the shop every test starts from
STOCK = {"widget": 1000, "gizmo": 1}
ACCOUNTS = {"alice": 100_000, "bob": 5}
BLOCKED = ("Atlantis",)
POOR = "bob"          # an account whose card is declined for any real order
SCARCE = "gizmo"      # a sku with one item on the shelf
COMPONENT_CLASS = "Orchestrator"


class Bookings:
    """How booking requests reach the orchestrator: the target of the kit's ``duplicate`` fault
    (``configure(duplicate=p)`` / ``flush()``, like :class:`splitbrain.faults.delivery.Delivery`).

    While ``duplicate`` is above 0, each booking is delivered again (with that probability, drawn
    from ``seed``) right after its first delivery ends: a client that retried, a queue that
    redelivered. When the first delivery killed the orchestrator, the copy reaches the restarted
    process. Bookings go one at a time, so nothing is ever held back or reordered."""

    def __init__(self, name: str = "orchestrator", seed: int = 0) -> None:
        self.name = name
        self.duplicate = 0.0
        self.rng = random.Random(seed)

    def configure(self, *, duplicate: float | None = None, reorder: float | None = None,
                  delay: float | None = None) -> None:
        if reorder or delay:
            raise ValueError("bookings go to the orchestrator one at a time: they can be "
                             "duplicated, not reordered or delayed")
        if duplicate is not None:
            if isinstance(duplicate, bool) or not isinstance(duplicate, (int, float)) \
                    or not 0 <= duplicate <= 1:
                raise ValueError(f"duplicate is a probability between 0 and 1, got {duplicate!r}")
            self.duplicate = float(duplicate)

    def flush(self) -> None:
        """Nothing is held back: a copy is delivered as soon as the first delivery ends."""

    def copies(self) -> int:
        """How many times the next booking is delivered."""
        return 2 if self.duplicate > 0 and self.rng.random() < self.duplicate else 1


@dataclass
class SagaRig:
    """Participants + one orchestrator worker; see the module docstring.

    spawn: ``spawn(name=..., resources=...)`` returning a sandbox ``Worker`` (the grading fixture).
    nemesis: the ``Nemesis`` every fault goes through (the test's fixture, ``ex.nemesis`` in a
        notebook); ``open`` makes one on ``history`` when none is given.
    step_timeout_s: what the orchestrator is told to wait for one answer.
    hold_s: how long a lost answer keeps the connection open before dropping it (for an
        orchestrator that never times out).
    """

    parts: Participants
    spawn: Callable[..., Any]
    history: History
    nemesis: Any = None
    step_timeout_s: float = 0.3
    hold_s: float = 1.0
    orders: dict[str, dict] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    crashes: int = 0

    def __post_init__(self) -> None:
        if self.nemesis is None:
            from splitbrain.faults import Nemesis
            self.nemesis = Nemesis(self.history)
        for service in OPERATIONS:   # "lost-reply(payment)": shaded on the participant's lane
            self.nemesis.add_target(service, self.parts)
        self._killed = threading.Event()
        self._killing = False
        self._dead = False
        self._n = 0
        self.worker = None
        self.orch = None
        self.bookings = Bookings()

    # -- set-up ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, ns: Any, spawn: Callable[..., Any], history: History, nemesis: Any = None,
             **kw: Any) -> "SagaRig":
        """Participants on the namespace database (admin URL), the standard shop, one worker."""
        parts = Participants(ns.pg_admin_url, history=history)
        parts.stock(STOCK)
        parts.accounts(ACCOUNTS)
        parts.block(*BLOCKED)
        parts.start()
        try:
            rig = cls(parts, spawn, history, nemesis, **kw)
            rig.start()
        except BaseException:
            parts.stop()
            raise
        return rig

    def start(self) -> None:
        self.worker = self.spawn(name="orchestrator", resources={"saga_url": self.parts.url})
        self.bookings.name = self.worker.name
        self._build()

    def _build(self) -> None:
        from splitbrain.sandbox import Ref
        self.orch = self.worker.new(COMPONENT_CLASS, Ref("pg_url"), Ref("rig.saga:participants"),
                                    step_timeout_s=self.step_timeout_s)

    def close(self) -> None:
        self.parts.stop()

    def order(self, **over: Any) -> dict:
        """A fresh order that can complete (override fields to make it fail)."""
        self._n += 1
        base = {"sku": "widget", "qty": 1 + self._n % 3, "account": "alice",
                "amount": 10 * (1 + self._n % 5), "address": f"{self._n} Main St"}
        return {**base, **over}

    # -- driving -----------------------------------------------------------------------------------
    def book(self, saga_id: str, order: dict, expect: str = "either") -> str | None:
        """Call ``book``; return its answer, or None when the orchestrator died or failed (the
        ledgers decide anyway). ``expect``: "done", "compensated" or "either". Under the
        ``duplicate`` fault (on :attr:`bookings`) the same request is delivered again once the
        first delivery ended, to a restarted orchestrator if it died; the last answer is
        returned."""
        self.orders[saga_id] = order
        self.expected[saga_id] = expect
        copies = self.bookings.copies()
        out = self._deliver(saga_id, order)
        for _ in range(copies - 1):
            if self._dead:   # the copy reaches a new process (nothing recovered first)
                self.restart_and_recover(recover=False)
            out = self._deliver(saga_id, order)
        return out

    def _deliver(self, saga_id: str, order: dict) -> str | None:
        from splitbrain.sandbox import CallTimeout, RemoteError, WorkerDied
        try:
            out = self.orch.book(saga_id, order)
        except WorkerDied:
            self._after_death()
            return None
        except CallTimeout as e:
            self.errors[saga_id] = f"book did not answer: {e}"
            self.restart_and_recover(recover=False)
            return None
        except RemoteError as e:
            self.errors[saga_id] = f"book raised {e.type}: {e.message}"
            return None
        if out in ("done", "compensated"):
            self.reported[saga_id] = out
        else:
            self.errors[saga_id] = f"book answered {out!r}, not 'done' or 'compensated'"
        return out

    def crash(self, op: str, when: str, saga_id: str | None = None) -> None:
        """Kill the orchestrator when ``op`` of ``saga_id`` arrives (``when="before"``: nothing
        done) or right after the participant committed it (``"after"``). The participant arms
        the moment; the kill (the kit's ``kill``) goes through the nemesis when it comes."""
        if when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {when!r}")
        self.parts.arm(op, f"crash-{when}", saga_id,
                       on_fire=lambda: self._kill(op=op, when=when, saga_id=saga_id))

    def lose_reply(self, op: str, saga_id: str | None = None, times: int = 1) -> Fault:
        """The participant does the work, and its answer is lost (the ``lost-reply`` fault)."""
        return self._inject("lost-reply", op, saga_id, times=times, hold_s=self.hold_s)

    def unavailable(self, op: str, saga_id: str | None = None, times: int = 1) -> Fault:
        """The participant answers 503 (and does nothing) ``times`` times (``unavailable``)."""
        return self._inject("unavailable", op, saga_id, times=times)

    def decline(self, op: str, saga_id: str | None = None) -> Fault:
        """The participant refuses the step ``op`` of ``saga_id`` every time it is asked
        (``decline``), as a card that stays declined."""
        return self._inject("decline", op, saga_id)

    def _inject(self, name: str, op: str, saga_id: str | None, **params: Any) -> Fault:
        service = op.partition(".")[0] if isinstance(op, str) else ""
        target = service if service in OPERATIONS else self.parts  # a bad op: the fault says why
        return self.nemesis.inject(name, target, op=op, saga_id=saga_id, **params)

    def _kill(self, **where: Any) -> None:
        self._killing = True
        self.crashes += 1
        try:
            self.nemesis.inject("kill", self.worker, **where)
        finally:
            self._killed.set()

    def _after_death(self) -> None:
        # the kill runs on the participants' thread; let it finish before anyone restarts
        self._dead = True
        self._killed.wait(10)

    def restart_and_recover(self, recover: bool = True) -> dict | None:
        """Start the orchestrator again (its memory is gone) and call ``recover()``."""
        from splitbrain.sandbox import CallTimeout, RemoteError, WorkerDied
        if self._killing:
            self._killed.wait(10)
        self._killing = False
        self._killed.clear()
        self.nemesis.inject("restart", self.worker)
        self._dead = False
        self._build()
        if not recover:
            return None
        try:
            out = self.orch.recover()
        except WorkerDied:
            self._after_death()
            return None
        except (CallTimeout, RemoteError) as e:
            self.errors["recover"] = f"recover failed: {e}"
            return None
        if isinstance(out, dict):
            for sid, res in out.items():
                if sid in self.orders and res in ("done", "compensated"):
                    self.reported[sid] = res
        return out

    # -- judging -----------------------------------------------------------------------------------
    def judge(self) -> Verdict:
        """The saga-atomicity verdict from the participants' ledgers."""
        v = check_saga_ledger(self.parts.ledger(), self.orders, self.expected, self.reported,
                              self.history)
        skipped = [Anomaly("skipped-step", f"saga {u['saga_id']}: the orchestrator never called "
                                           f"{u['op']}, so the {u['kind']} planned there never "
                                           f"happened; a saga runs reserve, charge, schedule, "
                                           f"and release, refund when it turns back",
                           (), dict(u)) for u in self.parts.unfired()]
        if not skipped and v.valid is True:
            return v
        # what the orchestrator raised explains the anomalies; alone it is no anomaly
        raised = [Anomaly("orchestrator-error", f"{where}: {msg}", (), {"where": where})
                  for where, msg in self.errors.items()]
        return Verdict(False, v.anomalies + tuple(skipped) + tuple(raised), v.checker, v.stats)


    # -- showing (notebook) ------------------------------------------------------------------------
    def ledger_table(self, saga_id: str | None = None) -> str:
        """The participants' ledgers as text, one line per call they answered."""
        lines = [f"{'saga':<16} {'service':<10} {'op':<9} {'status':<9} {'args':<34} key"]
        for r in self.parts.ledger():
            if saga_id is None or r.saga_id == saga_id:
                args = ", ".join(f"{k}={v}" for k, v in sorted(r.args.items()))
                lines.append(f"{r.saga_id:<16} {r.service:<10} {r.op:<9} {r.status:<9} "
                             f"{args:<34} {r.key}")
        return "\n".join(lines)

    def picture(self, saga_id: str | None = None, crash: tuple[str, str] | None = None):
        """The saga graph (``splitbrain.viz.saga_graph``) from the ledgers; ``crash=(op, when)``
        marks where the orchestrator was killed."""
        from rig.checkers import STEPS, effects
        from rig.saga import COMPENSATION_OF
        from splitbrain.viz import saga_graph
        rows = self.parts.ledger()
        title = None
        if saga_id is not None and saga_id in self.orders:
            v = check_saga_ledger([r for r in rows if r.saga_id == saga_id],
                                  {saga_id: self.orders[saga_id]})
            kinds = [k for k in v.kinds() if not k.endswith("-not-conserved")]
            title = f"saga {saga_id!r}: " + (", ".join(kinds) if kinds else "no anomaly")
        fx = effects(rows)
        fig = saga_graph(STEPS, fx, saga=saga_id, compensations=COMPENSATION_OF, title=title)
        ax = fig.axes[0]
        seen: dict[tuple[str, str], int] = {}
        for e in fx:
            if saga_id is None or e["saga"] == saga_id:
                k = (e["step"], e["action"])
                seen[k] = seen.get(k, 0) + 1
        for (step, action), n in seen.items():
            if n > 1 and saga_id is not None:   # a step or compensation that took effect twice
                x, y = STEPS.index(step) + 1, (1 if action == "do" else 0)
                ax.plot([x], [y], marker="o", markersize=52, markerfacecolor="none",
                        markeredgecolor="#c0392b", markeredgewidth=3, zorder=4)
                ax.annotate(f"{n} times!", xy=(x, y - 0.3), ha="center", fontsize=9,
                            color="#c0392b", fontweight="bold")
        if crash is not None:
            op, when = crash
            name = op.split(".")[-1]
            back = {v: k for k, v in COMPENSATION_OF.items()}
            if name in STEPS:
                x, y = STEPS.index(name) + 1, 1
            else:
                x, y = STEPS.index(back[name]) + 1, 0
            dx = 0.32 if when == "after" else -0.32
            if name not in STEPS:   # compensations run right to left
                dx = -dx
            ax.annotate(f"crash {when} {name}", xy=(x + dx, y + 0.2), ha="center", annotation_clip=False,
                        fontsize=9, color="#c0392b", fontweight="bold")
            ax.plot([x + dx], [y], marker="X", markersize=16, color="#c0392b", zorder=5)
        return fig


def _rig_fixture(ns: Any, spawn: Callable[..., Any], history: History, nemesis: Any):
    r = SagaRig.open(ns, spawn, history, nemesis)
    yield r
    r.close()


try:  # the `rig` fixture for hidden and public tests (needs the grading plugin's fixtures):
    import pytest  # `from rig.saga_rig import rig_fixture` makes it available to a test module
    rig_fixture = pytest.fixture(_rig_fixture, name="rig")
except ImportError:  # pragma: no cover - pytest is a dependency of the kit
    pass
