"""The lab-00 checkers (``rig.checkers``) on hand-written histories and ledgers: each guarantee,
kept and broken."""
from rig.checkers import (BANK_POST, check_answers, check_at_most_once, check_bounds,
                          check_outcomes, check_transfers)

from splitbrain.history import Event, History, call_value

ARGS = ("alice", "bob", 101)
BUDGET = {"app": {"attempts": 3, "timeout_s": 0.25, "budget_s": 1.75}}


def build(steps):
    """steps: (time, process, type, f, value) -> History."""
    return History.from_events(Event(p, t, f, v, time) for time, p, t, f, v in steps)


def call(t0, t1, answer, args=ARGS, p="app"):
    return [(t0, p, "invoke", "transfer", call_value(list(args))),
            (t1, p, "ok", "transfer", answer)]


def post(t0, t1, tid, replayed=False, args=ARGS, key=None, lane="bank"):
    src, dst, amount = args
    return [(t0, lane, "invoke", BANK_POST,
             call_value([], {"from": src, "to": dst, "amount": amount, "key": key})),
            (t1, lane, "ok", BANK_POST, {"code": 200, "status": "done", "id": tid,
                                         "replayed": replayed})]


def row(tid, args=ARGS, status="done", key=None):
    src, dst, amount = args
    return {"id": tid, "key": key, "src": src, "dst": dst, "amount": amount, "status": status}


def test_one_call_three_transfers_is_a_duplicate_effect_and_failed_is_a_lie():
    h = build([*call(0.0, 0.8, "failed"), *post(0.01, 0.02, 1), *post(0.26, 0.27, 2),
               *post(0.51, 0.52, 3)])
    ledger = [row(1), row(2), row(3)]
    assert check_at_most_once(h, ledger).kinds() == ["duplicate-effect"]
    assert check_outcomes(h, ledger).kinds() == ["unknown-reported-as-failed"]
    assert check_transfers(h, ledger).kinds() == ["duplicate-effect",
                                                  "unknown-reported-as-failed"]


def test_a_retry_the_bank_replayed_is_one_effect_and_unknown_is_honest():
    h = build([*call(0.0, 0.8, "unknown"), *post(0.01, 0.02, 1, key="k"),
               *post(0.26, 0.27, 1, replayed=True, key="k")])
    ledger = [row(1, key="k")]
    assert check_transfers(h, ledger, {ARGS: "either"}, BUDGET).ok


def test_failed_with_nothing_moved_is_honest_but_ok_without_money_is_a_phantom():
    h = build([*call(0.0, 0.8, "failed")])
    assert check_outcomes(h, []).ok
    h = build([*call(0.0, 0.1, "ok"), *call(0.2, 0.3, "ok"), *post(0.01, 0.02, 1, key="k"),
               *post(0.21, 0.22, 1, replayed=True, key="k")])
    assert check_outcomes(h, [row(1, key="k")]).kinds() == ["phantom-success"]


def test_unknown_when_an_answer_could_come_is_needless():
    h = build([*call(0.0, 0.3, "unknown")])
    assert check_answers(h, [row(1)], {ARGS: "ok"}).kinds() == ["needless-unknown"]
    assert check_answers(h, [row(1)], {ARGS: "either"}).ok
    h = build([(0.0, "app", "invoke", "transfer", call_value(list(ARGS))),
               (0.1, "app", "fail", "transfer", {"error": "HTTPError"})])
    assert check_answers(h, []).kinds() == ["bad-answer"]


def test_money_no_call_asked_for_is_a_wrong_transfer():
    assert check_at_most_once(build([]), [row(7)]).kinds() == ["wrong-transfer"]


def test_a_call_past_its_budget_or_attempts_breaks_the_bound():
    h = build([*call(0.0, 2.5, "unknown")])
    assert check_bounds(h, BUDGET).kinds() == ["overdue"]
    h = build([*call(0.0, 0.8, "unknown"),
               *[e for i in range(4) for e in post(0.1 * i, 0.1 * i + 0.01, 1, replayed=i > 0,
                                                  key="k")]])
    assert check_bounds(h, BUDGET).kinds() == ["too-many-attempts"]
