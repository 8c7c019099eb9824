"""Lab 00's checkers: what a transfer client promised, judged from the bank's own table.

Pure functions of a history (the client's ``transfer`` calls and the bank's ``POST /transfers``
requests, as the grader recorded them), the bank's ledger (every row of ``bank.transfers``, read by
the grader) and what the test expected. A transfer is known by its arguments: the tests give every
call its own amount, except where two calls are meant to be the same payment made twice; calls
with the same arguments are judged together (an assignment of effects to calls must exist).

``check_at_most_once`` (safety)
    ``duplicate-effect``: the money of one call moved more than once (a retry the bank could not
    recognise as a retry); ``wrong-transfer``: the bank moved money no call asked for.
``check_outcomes`` (safety)
    ``unknown-reported-as-failed``: ``transfer()`` answered ``"failed"`` and the money moved (a
    timeout is not a refusal); ``phantom-success``: it answered ``"ok"`` and the money never moved
    for it.
``check_answers`` (liveness)
    ``needless-unknown``: it answered ``"unknown"`` although the test let an answer through
    within its attempts (or a refusal it could read); ``wrong-answer``: it answered ``"failed"``
    for a transfer the bank would have made, and nothing moved; ``bad-answer``: it raised, or
    returned something other than ``"ok"``, ``"failed"`` or ``"unknown"``.
``check_bounds`` (bound)
    ``overdue``: it answered later than its attempts allow (``attempts × timeout_s`` plus one
    second); ``too-many-attempts``: the bank received more requests for it than ``attempts``.
``check_transfers``
    all of them at once (the hidden tests use this one).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from splitbrain.checkers.base import Anomaly, Verdict, get, verdict
from splitbrain.history import History, Operation

__all__ = ["Call", "calls", "bank_requests", "check_at_most_once", "check_outcomes",
           "check_answers", "check_bounds", "check_transfers", "ANSWERS", "BANK_POST",
           "BANK_GET"]

ANSWERS = ("ok", "failed", "unknown")
BANK_POST = "POST /transfers"
BANK_GET = "GET /transfers"
Args = tuple[str, str, int]


@dataclass(frozen=True)
class Call:
    """One ``transfer(src, dst, amount)`` call of a client, as the grader saw it.

    answer: what it returned ("ok", "failed", "unknown", or anything else it returned);
    raised: the exception type when it raised instead (a dead worker is ``WorkerDied``);
    end: None when it never came back."""

    process: str
    args: Args
    answer: Any
    raised: str | None
    start: float
    end: float | None
    events: tuple[int, ...]

    @property
    def definite(self) -> bool:
        return self.raised is None and self.answer in ("ok", "failed")

    @property
    def proper(self) -> bool:
        """It answered one of the three answers the interface allows."""
        return self.raised is None and self.end is not None and self.answer in ANSWERS

    def said(self) -> str:
        if self.end is None:
            return "never answered"
        if self.raised is not None:
            return f"raised {self.raised}"
        return f"answered {self.answer!r}"

    def describe(self) -> str:
        src, dst, amount = self.args
        return f"{self.process}'s transfer({src} -> {dst}, {amount})"


def _is_transfer(op: Operation) -> bool:
    return op.f == "transfer" or op.f.endswith(".transfer")


def _args(src: Any, dst: Any, amount: Any) -> Args | None:
    if isinstance(src, str) and isinstance(dst, str) and isinstance(amount, int) \
            and not isinstance(amount, bool):
        return (src, dst, amount)
    return None


def calls(history: History) -> list[Call]:
    """The clients' ``transfer`` calls, in the order they were made."""
    out = []
    for op in history.operations():
        if not _is_transfer(op):
            continue
        args = _args(op.arg(0, "src"), op.arg(1, "dst"), op.arg(2, "amount"))
        if args is None:
            continue
        raised = None
        answer = None
        if op.complete is not None:
            if op.complete.type == "ok":
                answer = op.result
            else:
                v = op.result
                raised = str(get(v, "error", "an exception")) if isinstance(v, dict) else \
                    "an exception"
        out.append(Call(op.process, args, answer, raised, op.start, op.end, op.events))
    return out


@dataclass(frozen=True)
class BankRequest:
    """One ``POST /transfers`` the bank received: its arguments, the transfer row it made or
    answered (``id``), whether it replayed an earlier outcome, and the history events."""

    args: Args | None
    id: int | None
    replayed: bool
    events: tuple[int, ...]


def bank_requests(history: History) -> list[BankRequest]:
    out = []
    for op in history.operations():
        if op.f != BANK_POST:
            continue
        args = _args(op.arg(0, "from"), op.arg(1, "to"), op.arg(2, "amount"))
        res = op.result if isinstance(op.result, dict) else {}
        tid = res.get("id")
        out.append(BankRequest(args, tid if isinstance(tid, int) else None,
                               bool(res.get("replayed")), op.events))
    return out


def _effects(ledger: Iterable[Any]) -> dict[Args, list[Any]]:
    """The transfers that moved money, by their arguments."""
    out: dict[Args, list[Any]] = defaultdict(list)
    for row in ledger:
        if get(row, "status") != "done":
            continue
        args = _args(get(row, "src"), get(row, "dst"), get(row, "amount"))
        if args is not None:
            out[args].append(row)
    return out


def _moved(rows: list[Any]) -> str:
    ids = ", ".join(f"#{get(r, 'id')}" for r in rows)
    n = len(rows)
    return f"{'once' if n == 1 else 'twice' if n == 2 else f'{n} times'} (bank transfer {ids})"


class _Judge:
    """Calls and effects grouped by arguments, with the events that show each effect."""

    def __init__(self, history: History, ledger: Iterable[Any]) -> None:
        self.history = history
        self.calls = calls(history)
        self.ledger = list(ledger)
        self.effects = _effects(self.ledger)
        self.requests = bank_requests(history)
        self.by_args: dict[Args, list[Call]] = defaultdict(list)
        for c in self.calls:
            self.by_args[c.args].append(c)
        self.row_events: dict[int, tuple[int, ...]] = {}
        for r in self.requests:
            if r.id is not None and not r.replayed:
                self.row_events.setdefault(r.id, r.events)

    def evidence(self, group: list[Call], rows: list[Any]) -> tuple[int, ...]:
        ev = [i for c in group for i in c.events]
        for r in rows:
            ev += self.row_events.get(get(r, "id"), ())
        return tuple(sorted(set(ev)))

    def replays(self, args: Args) -> list[int]:
        return sorted({i for r in self.requests if r.args == args and r.replayed
                       for i in r.events})

    def safety(self) -> tuple[list[Anomaly], list[Anomaly]]:
        """(duplicate-effect and wrong-transfer anomalies, outcome anomalies)."""
        twice: list[Anomaly] = []
        misreported: list[Anomaly] = []
        for args in sorted(set(self.by_args) | set(self.effects)):
            group, rows = self.by_args.get(args, []), self.effects.get(args, [])
            src, dst, amount = args
            if not group:
                twice.append(Anomaly(
                    "wrong-transfer", f"the bank moved {amount} from {src} to {dst} "
                    f"{_moved(rows)}, which no call asked for",
                    self.evidence([], rows), {"args": list(args)}))
                continue
            ok = [c for c in group if c.raised is None and c.answer == "ok"]
            failed = [c for c in group if c.raised is None and c.answer == "failed"]
            other = [c for c in group if c not in ok and c not in failed]
            extra = len(rows) - len(ok) - len(other)
            data = {"args": list(args), "calls": len(group), "moved": len(rows),
                    "context": self.replays(args)}
            if extra > 0 and failed:
                who = failed[0] if len(group) == 1 else None
                msg = (f"{who.describe()} answered 'failed' after {who.end - who.start:.2f} s, "
                       f"but the bank moved the money {_moved(rows)}" if who else
                       f"{len(failed)} of the {len(group)} calls transfer({src} -> {dst}, "
                       f"{amount}) answered 'failed', but the bank moved the money "
                       f"{_moved(rows)}: more than the others account for")
                misreported.append(Anomaly("unknown-reported-as-failed", msg + (
                    ". No answer is not a refusal: that attempt reached the bank."),
                    self.evidence(failed, rows), data))
            dup = extra - len(failed)
            if dup > 0:
                offenders = [c for c in group if c not in ok] or group
                if len(group) == 1:
                    c = group[0]
                    msg = (f"{c.describe()} {c.said()}, and the bank moved the money "
                           f"{_moved(rows)}: a retry the bank could not tell from a new "
                           f"transfer")
                else:
                    msg = (f"{len(group)} calls transfer({src} -> {dst}, {amount}) and the bank "
                           f"moved the money {_moved(rows)}: more than once for one of them")
                twice.append(Anomaly("duplicate-effect", msg,
                                     self.evidence(offenders, rows), data))
            if len(rows) < len(ok):
                lost = ok[len(rows):] if rows else ok
                c = lost[0]
                msg = (f"{c.describe()} answered 'ok', but the bank never moved that money"
                       if len(group) == 1 else
                       f"{len(ok)} calls transfer({src} -> {dst}, {amount}) answered 'ok', but "
                       f"the bank moved the money {_moved(rows) if rows else 'never'}: "
                       f"{len(ok) - len(rows)} of them took another transfer's answer for "
                       f"their own")
                misreported.append(Anomaly("phantom-success", msg, self.evidence(lost, rows),
                                           data))
        return twice, misreported

    def answers(self, expected: Mapping[Args, str]) -> list[Anomaly]:
        out = []
        for c in self.calls:
            if not c.proper:
                what = ("never answered" if c.end is None else
                        f"raised {c.raised}" if c.raised else f"returned {c.answer!r}")
                out.append(Anomaly(
                    "bad-answer", f"{c.describe()} {what}; it must return 'ok', 'failed' or "
                    f"'unknown' (a network problem is an answer: 'unknown', or a retry)",
                    c.events, {"args": list(c.args)}))
                continue
            want = expected.get(c.args, "either")
            if want not in ("ok", "failed") or c.answer == want:
                continue
            if c.answer == "unknown":
                out.append(Anomaly(
                    "needless-unknown", f"{c.describe()} answered 'unknown', but the bank's "
                    f"answer ({want!r}) could reach it within its attempts: ask again (with the "
                    f"same key) before you give up", c.events, {"args": list(c.args)}))
            elif c.answer == "failed" and not self.effects.get(c.args):
                out.append(Anomaly(
                    "wrong-answer", f"{c.describe()} answered 'failed', but the bank would have "
                    f"made that transfer and nothing moved: it gave up on a transfer it could "
                    f"have made", c.events, {"args": list(c.args)}))
        return out

    def bounds(self, budgets: Mapping[str, Mapping[str, float]]) -> list[Anomaly]:
        out = []
        end = max((e.time for e in self.history.events), default=0.0)
        for c in self.calls:
            b = budgets.get(c.process)
            if not b:
                continue
            took = (c.end if c.end is not None else end) - c.start
            if took > float(b["budget_s"]):
                out.append(Anomaly(
                    "overdue", f"{c.describe()} took {took:.2f} s; with {b['attempts']:g} "
                    f"attempts of {b['timeout_s']:g} s it must answer within "
                    f"{float(b['budget_s']):.2f} s: give up and answer 'unknown'",
                    c.events, {"args": list(c.args), "took_s": round(took, 3)}))
        for args, group in self.by_args.items():
            allowed = 0
            for c in group:
                b = budgets.get(c.process)
                if not b:
                    allowed = -1
                    break
                allowed += int(b["attempts"])
            sent = [r for r in self.requests if r.args == args]
            if allowed >= 0 and len(sent) > allowed:
                c = group[0]
                out.append(Anomaly(
                    "too-many-attempts", f"{c.describe()} sent the bank {len(sent)} requests; "
                    f"it may send at most {allowed} (its attempts)",
                    tuple(sorted({i for r in sent for i in r.events} | set(c.events))),
                    {"args": list(args), "requests": len(sent)}))
        return out


def check_at_most_once(history: History, ledger: Iterable[Any]) -> Verdict:
    """Each call moved its money at most once, and the bank moved nothing no call asked for."""
    twice, _ = _Judge(history, ledger).safety()
    return verdict("at-most-once", twice)


def check_outcomes(history: History, ledger: Iterable[Any]) -> Verdict:
    """'ok' means the money moved, 'failed' means it did not (judged after every request in
    flight has landed)."""
    _, misreported = _Judge(history, ledger).safety()
    return verdict("honest-outcome", misreported)


def check_answers(history: History, ledger: Iterable[Any],
                  expected: Mapping[Args, str] | None = None) -> Verdict:
    """A call answers one of the three answers, and a definite one when the test let one
    through (``expected[args]``: "ok", "failed" or "either")."""
    return verdict("answers", _Judge(history, ledger).answers(expected or {}))


def check_bounds(history: History, budgets: Mapping[str, Mapping[str, float]]) -> Verdict:
    """Each call answers within its budget and sends at most its attempts
    (``budgets[process]``: ``attempts``, ``timeout_s``, ``budget_s``)."""
    return verdict("bounds", _Judge(history, ()).bounds(budgets))


def check_transfers(history: History, ledger: Iterable[Any],
                    expected: Mapping[Args, str] | None = None,
                    budgets: Mapping[str, Mapping[str, float]] | None = None) -> Verdict:
    """Every guarantee of the chapter at once."""
    j = _Judge(history, ledger)
    twice, misreported = j.safety()
    anomalies = twice + misreported + j.answers(expected or {}) + j.bounds(budgets or {})
    return verdict("transfers", anomalies, calls=len(j.calls),
                   moved=sum(len(v) for v in j.effects.values()))
