"""The rig of lab 03, shared by the hidden tests, the public tests and the notebook.

``SagaRig`` holds the participants (in this process, with fault injection) and one sandboxed worker
running the learner's ``Orchestrator``. It books orders, crashes the orchestrator at the moment a
participant receives or commits a call, restarts it and runs ``recover()``, and judges every saga
from the participants' own ledgers (never from what the orchestrator says about itself).

```python
rig = SagaRig.open(ns, spawn, history)          # participants + worker, standard shop
rig.book("s1", rig.order())                      # a saga that can complete
rig.crash("payment.charge", "after", "s2")       # kill the orchestrator right after the charge
rig.book("s2", rig.order())                      # -> None: the orchestrator died
rig.restart_and_recover()
verdict = rig.judge()
```
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from splitbrain.checkers.base import Anomaly, Verdict
from splitbrain.checkers.saga_lab import check_saga_ledger
from splitbrain.history import History
from splitbrain.labsupport.saga_server import Participants

__all__ = ["SagaRig", "STOCK", "ACCOUNTS", "BLOCKED", "POOR", "SCARCE"]

#: the shop every test starts from
STOCK = {"widget": 1000, "gizmo": 1}
ACCOUNTS = {"alice": 100_000, "bob": 5}
BLOCKED = ("Atlantis",)
POOR = "bob"          # an account whose card is declined for any real order
SCARCE = "gizmo"      # a sku with one item on the shelf
COMPONENT_CLASS = "Orchestrator"


@dataclass
class SagaRig:
    """Participants + one orchestrator worker; see the module docstring.

    spawn: ``spawn(name=..., resources=...)`` returning a sandbox ``Worker`` (the grading fixture).
    step_timeout_s: what the orchestrator is told to wait for one answer.
    hold_s: how long a lost answer keeps the connection open before dropping it (for an
        orchestrator that never times out).
    """

    parts: Participants
    spawn: Callable[..., Any]
    history: History
    step_timeout_s: float = 0.3
    hold_s: float = 1.0
    orders: dict[str, dict] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    crashes: int = 0

    def __post_init__(self) -> None:
        self._killed = threading.Event()
        self._killing = False
        self._n = 0
        self.worker = None
        self.orch = None

    # -- set-up ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, ns: Any, spawn: Callable[..., Any], history: History, **kw: Any) -> "SagaRig":
        """Participants on the namespace database (admin URL), the standard shop, one worker."""
        parts = Participants(ns.pg_admin_url, history=history)
        parts.stock(STOCK)
        parts.accounts(ACCOUNTS)
        parts.block(*BLOCKED)
        parts.start()
        rig = cls(parts, spawn, history, **kw)
        try:
            rig.start()
        except BaseException:
            parts.stop()
            raise
        return rig

    def start(self) -> None:
        self.worker = self.spawn(name="orchestrator", resources={"saga_url": self.parts.url})
        self._build()

    def _build(self) -> None:
        from splitbrain.sandbox import Ref
        self.orch = self.worker.new(COMPONENT_CLASS, Ref("pg_url"),
                                    Ref("splitbrain.labsupport.saga:participants"),
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
        ledgers decide anyway). ``expect``: "done", "compensated" or "either"."""
        from splitbrain.sandbox import CallTimeout, RemoteError, WorkerDied
        self.orders[saga_id] = order
        self.expected[saga_id] = expect
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
        done) or right after the participant committed it (``"after"``)."""
        if when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {when!r}")
        self.parts.arm(op, f"crash-{when}", saga_id, on_fire=self._kill)

    def lose_reply(self, op: str, saga_id: str | None = None, times: int = 1) -> None:
        """The participant does the work, and its answer is lost."""
        self.parts.arm(op, "lost-reply", saga_id, times=times, hold_s=self.hold_s)

    def unavailable(self, op: str, saga_id: str | None = None, times: int = 1) -> None:
        """The participant answers 503 (and does nothing) ``times`` times."""
        self.parts.arm(op, "unavailable", saga_id, times=times)

    def _kill(self) -> None:
        self._killing = True
        self.crashes += 1
        self.worker.kill()
        self._killed.set()

    def _after_death(self) -> None:
        # the kill runs on the participants' thread; let it finish before anyone restarts
        self._killed.wait(10)

    def restart_and_recover(self, recover: bool = True) -> dict | None:
        """Start the orchestrator again (its memory is gone) and call ``recover()``."""
        from splitbrain.sandbox import CallTimeout, RemoteError, WorkerDied
        if self._killing:
            self._killed.wait(10)
        self._killing = False
        self._killed.clear()
        self.worker.restart()
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
        from splitbrain.checkers.saga_lab import STEPS, effects
        from splitbrain.labsupport.saga import COMPENSATION_OF
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


def _rig_fixture(ns: Any, spawn: Callable[..., Any], history: History):
    r = SagaRig.open(ns, spawn, history)
    yield r
    r.close()


try:  # the `rig` fixture for hidden and public tests (needs the grading plugin's fixtures)
    import pytest
    rig = pytest.fixture(_rig_fixture, name="rig")
except ImportError:  # pragma: no cover - pytest is a dependency of the kit
    pass
