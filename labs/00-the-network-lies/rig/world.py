"""The world of lab 00, shared by the hidden tests, the public tests and the notebook.

``World`` holds the bank (:class:`rig.bank.Bank`, in this process, over the test's database), the
fault proxy every client reaches it through (``world.link``, the network), and the learner's
``TransferClient`` running in sandboxed workers. It makes transfers, remembers what each one was
expected to answer, waits until every request still in the network has landed, and judges every
guarantee of the chapter from the bank's own table (:func:`rig.checkers.check_transfers`)::

    with World.open(ns, spawn, history, nemesis) as world:
        app = world.client("app", timeout_s=0.2, attempts=3)
        with nemesis.fault("latency", "network", ms=1000):        # every answer arrives late
            app.transfer("alice", "bob", world.amount())            # -> "unknown" when fixed
        nemesis.inject("lost-reply", "bank")                         # the next answer is lost
        app.transfer("alice", "bob", world.amount(), expect="ok")   # a retry must learn it
        world.drain()                  # every request still in the network has landed
        verdict = world.judge()

The nemesis knows two targets by name: ``"network"`` (the proxy: ``latency``, ``blackhole``,
``reset``, ``stall``) and ``"bank"`` (``lost-reply``, ``held-request``). Every fault goes through
it and is recorded in the history.

A call that does not answer within its budget (``attempts × timeout_s`` plus one second) is
``overdue``: the world heals every fault then, so that the call can come back and the test go on.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable

from rig import faults as _faults  # noqa: F401  (the faults the world injects, also in a notebook)
from rig.bank import Bank
from rig.checkers import Args, check_transfers
from splitbrain.checkers.base import Verdict
from splitbrain.history import History

__all__ = ["World", "Client", "ACCOUNTS", "POOR", "BOUND_SLACK_S", "NETWORK_FAULTS",
           "BANK_FAULTS", "COMPONENT_CLASS"]

#: the accounts every world starts with
ACCOUNTS = {"alice": 1_000_000, "bob": 1_000_000, "carol": 1_000_000, "dave": 5}
POOR = "dave"            # 5 in the account: any larger transfer from it is declined
BOUND_SLACK_S = 1.0      # a call may take attempts × timeout_s plus this long
NETWORK_FAULTS = ("latency", "blackhole", "partition", "reset", "stall", "refuse", "bandwidth",
                  "slicer")
BANK_FAULTS = ("lost-reply", "held-request")
COMPONENT_CLASS = "TransferClient"


class Client:
    """One worker process running the learner's ``TransferClient`` against the bank.

    ``transfer`` returns what ``transfer()`` answered, or None when it raised or its worker died
    (the history has what happened). ``expect``: what the call must answer, "ok" or "failed",
    when the test lets an answer through within its attempts; "either" (the default) when no
    answer may come."""

    def __init__(self, world: "World", name: str, timeout_s: float, attempts: int,
                 url: str) -> None:
        self.world, self.name = world, name
        self.timeout_s, self.attempts, self.url = float(timeout_s), int(attempts), url
        self.worker = world.spawn(name)
        self.obj: Any = None
        self.dead = False

    @property
    def budget_s(self) -> float:
        return self.attempts * self.timeout_s + BOUND_SLACK_S

    def build(self) -> "Client":
        """Construct the TransferClient in the worker (waits for the worker to have started)."""
        if self.obj is None:
            self.obj = self.worker.new(COMPONENT_CLASS, self.url, timeout_s=self.timeout_s,
                                       attempts=self.attempts)
        return self

    def start(self, src: str, dst: str, amount: int, expect: str = "either") -> Future:
        """Send one transfer; the Future gives its answer (None: it raised or the worker died).
        It is overdue once ``budget_s`` passed without an answer (see the module docstring)."""
        self.world._expect((src, dst, amount), expect)
        out: Future = Future()
        if self.dead:
            out.set_result(None)
            return out
        self.build()
        began = time.monotonic()
        fut = self.obj.transfer.async_(src, dst, amount)

        def watch() -> None:
            try:
                answer = fut.result(timeout=max(0.0, began + self.budget_s - time.monotonic()))
            except FutureTimeout:
                try:
                    self.world.overdue(self)
                finally:
                    answer = self._late(fut)
            except Exception:  # noqa: BLE001 - it raised, or the worker died: in the history
                answer = self._gone(fut)
            out.set_result(answer)

        threading.Thread(target=watch, name=f"lab00-{self.name}-call", daemon=True).start()
        return out

    def _late(self, fut: Future) -> Any:
        try:
            return fut.result()
        except Exception:  # noqa: BLE001
            return self._gone(fut)

    def _gone(self, fut: Future) -> None:
        from splitbrain.sandbox import CallTimeout, WorkerDied
        exc = fut.exception()
        if isinstance(exc, (CallTimeout, WorkerDied)):
            self.dead = True
        return None

    def transfer(self, src: str, dst: str, amount: int, expect: str = "either") -> Any:
        return self.start(src, dst, amount, expect).result()


@dataclass
class World:
    """The bank, the network to it, and the clients; see the module docstring.

    spawn: ``spawn(name)`` returning a sandbox ``Worker`` running the component (the grading
        fixture, or ``ex.spawn`` in a notebook). nemesis: the one route of every fault.
    """

    bank: Bank
    link: Any
    spawn: Callable[..., Any]
    history: History
    nemesis: Any
    expected: dict[Args, str] = field(default_factory=dict)
    budgets: dict[str, dict[str, float]] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    overdue_calls: int = 0

    def __post_init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()
        self.nemesis.add_target("network", self.link)
        self.nemesis.add_target("bank", self.bank)

    # -- set-up ------------------------------------------------------------------------------
    @classmethod
    def open(cls, ns: Any, spawn: Callable[..., Any], history: History, nemesis: Any = None,
             accounts: dict[str, int] | None = None, seed: int = 0) -> "World":
        """The bank on the namespace's database (as the grader: the learner's role cannot read
        its schema), its accounts, and the fault proxy in front of it."""
        if nemesis is None:
            from splitbrain.faults import Nemesis
            nemesis = Nemesis(history)
        from splitbrain.faults.proxy import FaultProxy
        bank = Bank(ns.pg_admin_url, history).start()
        link = None
        try:
            bank.prepare()
            bank.open_accounts(ACCOUNTS if accounts is None else accounts)
            link = FaultProxy("network", seed=seed)
            link.start(bank.address)
            link.url = f"http://{link.host}:{link.port}"
        except BaseException:
            if link is not None:
                link.stop()
            bank.stop()
            raise
        return cls(bank, link, spawn, history, nemesis)

    def client(self, name: str = "app", timeout_s: float = 0.2, attempts: int = 3,
               direct: bool = False, build: bool = True) -> Client:
        """Start a worker running the learner's TransferClient(url, timeout_s, attempts). Its
        url is the network's (the fault proxy), or the bank's own with ``direct=True``.
        ``build=False`` leaves the constructor for later (``Client.build``), so that several
        workers start at once."""
        c = Client(self, name, timeout_s, attempts, self.bank.url if direct else self.link.url)
        self.clients[name] = c
        self.budgets[name] = {"attempts": c.attempts, "timeout_s": c.timeout_s,
                              "budget_s": c.budget_s}
        if build:
            c.build()
        return c

    def amount(self) -> int:
        """A fresh amount: every transfer of a test gets its own, so that the bank's table
        says which call each row belongs to."""
        with self._lock:
            self._n += 1
            return 100 + self._n

    def target(self, fault: str) -> str:
        """The nemesis's name for what ``fault`` acts on: "network" or "bank"."""
        return "bank" if fault in BANK_FAULTS else "network"

    def _expect(self, args: Args, expect: str) -> None:
        if expect not in ("ok", "failed", "either"):
            raise ValueError(f"expect is 'ok', 'failed' or 'either', got {expect!r}")
        with self._lock:
            self.expected[args] = expect

    def overdue(self, client: Client) -> None:
        """A call outlived its budget: heal every fault so that it can come back."""
        with self._lock:
            self.overdue_calls += 1
        try:
            self.nemesis.heal_all()
        finally:
            self.bank.disarm()

    # -- waiting -------------------------------------------------------------------------------
    def connections(self) -> int:
        """Connections open through the network right now."""
        return self.link.connections()

    def wait_connections(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until ``n`` connections are open through the network (a client's n-th attempt
        has connected, while the earlier ones are still held); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connections() >= n:
                return True
            time.sleep(0.002)
        return False

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until nothing is left in the network: no connection open through the proxy, no
        request at the bank. Run it after the faults are healed and the calls came back, so that
        a request held in the network has landed before the bank's table is judged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connections() == 0 and self.bank.in_flight == 0:
                return
            time.sleep(0.005)
        raise TimeoutError(f"requests still in flight after {timeout} s: "
                           f"{self.connections()} connections open, {self.bank.in_flight} at "
                           f"the bank ({self.bank.held} held): heal every fault first")

    # -- judging -------------------------------------------------------------------------------
    def judge(self) -> Verdict:
        """Every guarantee, from the history and the bank's own table."""
        return check_transfers(self.history, self.bank.ledger(), self.expected, self.budgets)

    # -- showing (notebook) ----------------------------------------------------------------------
    def ledger_table(self) -> str:
        """The bank's transfers as text, one line per row of its table."""
        rows = self.bank.ledger()
        lines = [f"{'#':>3}  {'from':<6} {'to':<6} {'amount':>7}  {'status':<9} key"]
        for r in rows:
            lines.append(f"{r.id:>3}  {r.src:<6} {r.dst:<6} {r.amount:>7}  {r.status:<9} "
                         f"{r.key or '(none)'}")
        if not rows:
            lines.append("     (no transfer)")
        return "\n".join(lines)

    def close(self) -> None:
        try:
            self.nemesis.heal_all()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        try:
            self.link.stop()
        except Exception:  # noqa: BLE001
            pass
        self.bank.stop()

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
