"""Grader side of lab 05 (distributed rate limiting), shared by the hidden tests, the public tests,
the notebook and the bench (``rig.ratelimit``).

* :class:`Config` is one limit (``limit`` per ``window_s``, ``timeout_s`` per Redis round trip)
  and the bound a decision must keep, ``timeout_s`` plus a second (the chapter's words).
* :class:`Gateway` is one API gateway process: a sandboxed worker running the learner's
  ``limiter.py`` with one ``RateLimiter`` in it, the way each gateway replica holds its own limiter
  against the shared Redis; :func:`gateways` starts several at once.
* Drivers, each call recorded in the history when it is really sent (never queued ahead), so the
  time between a call and its answer brackets the moment the limiter decided: :func:`calls`,
  :func:`race`, :func:`stream`, :func:`alternate`, :func:`at_once`, :func:`paced`,
  :func:`bursts`.
* Exploration that controls the moment instead of hoping for it: :func:`convoy` goes through
  every boundary between two round trips with the ``stall`` fault, holding every gateway at the
  same one; :func:`find_release` finds when a limiter lets go of a burst (a fixed window's
  boundary), so that :func:`hammer` can straddle the next one.
* Judging: :func:`judge_history` checks every guarantee of ``lab.toml`` over a whole history:
  the envelope and fair share over the decisions taken while Redis worked (per stretch between
  Redis restarts), the declared policy over those taken while it failed, the bound over all, and
  the keys' expiries that :func:`key_ttls` read with the grader's own connection.
* :func:`declared_policy` reads ``FAILURE_POLICY`` from the component's source without running it;
  :func:`next_boundary` is when the next fixed window of ``window_s`` starts on the machine's
  clock; :data:`WALL_CLOCK` is that clock as the target of the ``window-boundary`` condition.

Faults go through the nemesis like every other: ``nemesis.inject("clock-skew", gateway.worker,
offset=5.0)``, ``with nemesis.fault("latency", proxy, ms=20): ...``.
"""
from __future__ import annotations

import ast
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

LIMIT = 10                   # requests per client ...
WINDOW_S = 2.0               # ... in any window of this many seconds
TIMEOUT_S = 0.5              # what each limiter is told to spend on Redis, at most, per round trip
GRACE_S = 1.0                # a decision may take timeout_s plus this (the chapter: "plus a second")
BOUND_S = TIMEOUT_S + GRACE_S
CALL_TIMEOUT_S = 3.0         # a call still unanswered after this is hung: the worker is killed
# The timeout of a test that slows Redis nowhere: far past any hiccup of a busy machine, so every
# decision is Redis's answer. (At 0.5 s, a round trip that a loaded machine held up that long
# answered the failure policy, an admission Redis never counted, and a correct limiter broke the
# envelope now and then.)
PATIENT_TIMEOUT_S = 2.0

# Faults during which a decision may be the declared policy rather than Redis's answer: the
# decisions they overlap are not judged for the envelope and fair share (a limiter that fails
# open admits without counting), and those entirely inside one are judged for the policy.
FAILING = ("partition", "blackhole", "refuse", "reset", "restart", "stall")
# Of those, the ones during which no round trip can complete: every decision is the policy's.
UNREACHABLE = ("partition", "blackhole", "refuse", "reset", "restart")


@dataclass(frozen=True)
class Config:
    """One limit as the grader sets it on every gateway of a test."""

    limit: int = LIMIT
    window_s: float = WINDOW_S
    timeout_s: float = TIMEOUT_S

    @property
    def rate(self) -> float:
        return self.limit / self.window_s

    @property
    def bound_s(self) -> float:
        """What a decision may take: ``timeout_s`` plus a second."""
        return self.timeout_s + GRACE_S

    @property
    def call_timeout_s(self) -> float:
        return max(CALL_TIMEOUT_S, self.bound_s + 1.0)

    @property
    def max_ttl_ms(self) -> float:
        """How long a key may be set to live: ten windows, and never less than 20 s."""
        return max(10 * self.window_s, 20.0) * 1000


DEFAULT = Config()
PATIENT = Config(timeout_s=PATIENT_TIMEOUT_S)


class Gateway:
    """One gateway process with one limiter. ``allow(client)`` returns True/False, or None when
    the call raised or never answered (the history has the details). ``start=False`` spawns the
    process and leaves building the limiter to :meth:`start` (see :func:`gateways`)."""

    def __init__(self, spawn: Callable[..., Any], name: str, prefix: str, *,
                 redis_url: str | None = None, limit: int | None = None,
                 window_s: float | None = None, timeout_s: float | None = None,
                 config: Config | None = None, call_timeout_s: float | None = None,
                 memory_mb: int = 512, start: bool = True) -> None:
        from splitbrain.sandbox import Limits
        cfg = config or DEFAULT
        self.config = Config(limit if limit is not None else cfg.limit,
                             window_s if window_s is not None else cfg.window_s,
                             timeout_s if timeout_s is not None else cfg.timeout_s)
        self.name = name
        self.prefix = prefix
        resources = {"redis_url": redis_url} if redis_url else None
        self.worker = spawn(name, resources=resources, limits=Limits(
            memory_mb=memory_mb, call_timeout_s=call_timeout_s or self.config.call_timeout_s))
        self.limiter: Any = None
        if start:
            self.start()

    def start(self) -> "Gateway":
        from splitbrain.sandbox import Ref
        if self.limiter is None:
            c = self.config
            self.limiter = self.worker.new("RateLimiter", Ref("redis_url"), prefix=self.prefix,
                                           limit=c.limit, window_s=c.window_s, clock=Ref("clock"),
                                           timeout_s=c.timeout_s)
        return self

    def allow(self, client: str) -> bool | None:
        from splitbrain.sandbox import SandboxError
        try:
            got = self.limiter.allow(client)
        except SandboxError:
            return None
        return got if isinstance(got, bool) else None

    @property
    def alive(self) -> bool:
        return self.worker.alive


def gateways(spawn: Callable[..., Any], names: Sequence[str], prefix: str, *,
             urls: Sequence[str | None] | None = None, config: Config | None = None
             ) -> list[Gateway]:
    """Several gateways, their processes started together (``urls[i]``: gateway i's Redis URL,
    e.g. through its own fault proxy)."""
    urls = list(urls) if urls is not None else [None] * len(names)
    made = [Gateway(spawn, n, prefix, redis_url=u, config=config, start=False)
            for n, u in zip(names, urls)]
    return [g.start() for g in made]


# -- drivers ---------------------------------------------------------------------------------------

def calls(gateway: Gateway, client: str, n: int, pace_s: float = 0.0) -> list[bool | None]:
    """``n`` calls one after another from one gateway. Calls to a gateway that died (killed after
    a hung call) fail at once and are recorded as unanswered, so they count against it."""
    out: list[bool | None] = []
    for i in range(n):
        out.append(gateway.allow(client))
        if pace_s and i < n - 1:
            time.sleep(pace_s)
    return out


def race(gateways: Sequence[Gateway], client: str, n_each: int) -> list[list[bool | None]]:
    """Every gateway sends ``n_each`` calls for ``client`` at the same time (one thread each)."""
    start = threading.Barrier(len(gateways))

    def run(g: Gateway) -> list[bool | None]:
        start.wait(timeout=30)
        return calls(g, client, n_each)

    with ThreadPoolExecutor(len(gateways)) as pool:
        return [f.result() for f in [pool.submit(run, g) for g in gateways]]


def at_once(gateways: Sequence[Gateway], client: str | Sequence[str]) -> list[bool | None]:
    """One call from every gateway at the same moment (``client``: one for all, or one each)."""
    who = [client] * len(gateways) if isinstance(client, str) else list(client)
    with ThreadPoolExecutor(len(gateways)) as pool:
        return [f.result() for f in [pool.submit(g.allow, c) for g, c in zip(gateways, who)]]


def stream(gateways: Sequence[Gateway], client: str, until: float, pace_s: float = 0.01,
           clock: Callable[[], float] = time.time) -> list[list[bool | None]]:
    """Every gateway calls for ``client`` every ``pace_s`` seconds until ``clock() >= until``."""
    def run(g: Gateway) -> list[bool | None]:
        out: list[bool | None] = []
        while clock() < until and g.alive:
            out.append(g.allow(client))
            time.sleep(pace_s)
        return out

    with ThreadPoolExecutor(len(gateways)) as pool:
        return [f.result() for f in [pool.submit(run, g) for g in gateways]]


def alternate(gateways: Sequence[Gateway], client: str, rounds: int) -> list[bool | None]:
    """One call from each gateway in turn, ``rounds`` times: no two calls overlap."""
    out = []
    for _ in range(rounds):
        for g in gateways:
            out.append(g.allow(client))
    return out


def paced(gateway: Gateway, client: str, every_s: float, until: float) -> list[bool | None]:
    """One call every ``every_s`` seconds (on a schedule, so a slow call does not bunch the next
    ones up) until ``time.monotonic() >= until``."""
    out: list[bool | None] = []
    t = time.monotonic()
    while t < until and gateway.alive:
        sleep_until(t, time.monotonic)
        out.append(gateway.allow(client))
        t = max(t + every_s, time.monotonic())
    return out


def bursts(gateway: Gateway, client: str, size: int, gaps_s: Sequence[float],
           until: float) -> list[bool | None]:
    """Bursts of ``size`` calls, each followed by the next gap of ``gaps_s`` (in turn), until
    ``time.monotonic() >= until``: a client that is quiet for a while, then busy."""
    out: list[bool | None] = []
    i = 0
    while time.monotonic() < until and gateway.alive:
        out += calls(gateway, client, size)
        sleep_until(min(until, time.monotonic() + gaps_s[i % len(gaps_s)]), time.monotonic)
        i += 1
    return out


def hammer(gateway: Gateway, client: str, until: float) -> list[bool | None]:
    """Calls back to back until ``time.monotonic() >= until``."""
    out: list[bool | None] = []
    while time.monotonic() < until and gateway.alive:
        out.append(gateway.allow(client))
    return out


def in_parallel(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads of their own, all at once; their results in order."""
    with ThreadPoolExecutor(len(jobs)) as pool:
        return [f.result() for f in [pool.submit(j) for j in jobs]]


# -- exploration -----------------------------------------------------------------------------------

def _engaged(stall: Any, call: Future, deadline: float) -> bool:
    """Wait until ``stall`` engaged (True) or ``call`` returned or the deadline passed (False)."""
    while time.monotonic() < deadline:
        if stall.wait(0.02):
            return True
        if call.done():
            return stall.wait(0)
    return False


def convoy(nemesis: Any, gateways: Sequence[Gateway], proxies: Sequence[Any],
           client_of: Callable[[int], str], prepare: Callable[[str], Any] | None = None, *,
           stream: str = "upstream", max_k: int = 16, engage_s: float = 2.0) -> int:
    """Visit every boundary between two round trips of a decision, with every gateway at once.

    For k = 0, 1, 2, ...: ``prepare(client_of(k))`` (e.g. spend part of a fresh client's limit),
    then stall every gateway's link (``proxies[i]`` is gateway i's) after k more messages on
    ``stream`` ("upstream": hold the next request, a pause before it; "downstream": hold the next
    reply, the server did it and the gateway does not know yet), let every gateway ask for
    ``client_of(k)`` at the same moment, wait until each stall engaged or its call returned, and
    release them together: every gateway has done exactly its first k messages, and all go on
    from there at once. Ends at the first k where no stall engaged (the decision needs no more
    messages: every boundary was visited); returns that k.
    """
    for k in range(max_k):
        who = client_of(k)
        if prepare is not None:
            prepare(who)
        stalls = [nemesis.inject("stall", px, after=k, stream=stream) for px in proxies]
        engaged = []
        try:
            with ThreadPoolExecutor(len(gateways)) as pool:
                futures = [pool.submit(g.allow, who) for g in gateways]
                deadline = time.monotonic() + engage_s
                engaged = [_engaged(s, f, deadline) for s, f in zip(stalls, futures)]
                for s in stalls:
                    nemesis.heal(s)
                for f in futures:
                    f.result()
        finally:
            for s in stalls:
                nemesis.heal(s)
        if not any(engaged):
            return k
    return max_k


def find_release(gateway: Gateway, client: str, limit: int, deadline_s: float,
                 every_s: float = 0.005) -> tuple[float, float] | None:
    """Spend a quiet client's limit at once (``limit`` calls), then ask again every ``every_s``
    until a request is admitted: the moment the limiter let go of the burst (a fixed window's
    boundary, a token's refill, the oldest entry of a log leaving the window). Returns the
    monotonic times (call of the last refused probe, answer of the admitted one): the limiter let
    go in between. None if nothing was admitted within ``deadline_s`` (the judge sees why)."""
    calls(gateway, client, limit)
    end = time.monotonic() + deadline_s
    before = time.monotonic()
    while time.monotonic() < end and gateway.alive:
        t0 = time.monotonic()
        if gateway.allow(client):
            return before, time.monotonic()
        before = t0
        sleep_until(t0 + every_s, time.monotonic)
    return None


class Storm:
    """Follows a fault ``Schedule`` through the nemesis (every fault injected and healed by it,
    so recorded in the history as always) in a thread of its own, and notes for each fault when
    it had surely taken effect (its injection returned) and when its heal began: ``windows``,
    :class:`~splitbrain.history.FaultWindow` s in the history's clock, for
    ``judge_history(in_effect=...)``."""

    def __init__(self, nemesis: Any, history: Any, schedule: Any) -> None:
        self.nemesis, self.history, self.schedule = nemesis, history, schedule
        self.windows: list[Any] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        from splitbrain.history import FaultWindow
        t0 = time.monotonic()
        live: dict[int, tuple[Any, float]] = {}

        def close(event: Any, fault: Any, on: float) -> None:
            off = self.history.now()
            self.nemesis.heal(fault)
            self.windows.append(FaultWindow(event.fault, event.target, on, off,
                                            dict(event.params), ()))
        try:
            for at, _, action, event in self.nemesis.steps(self.schedule):
                if self._stop.wait(max(0.0, t0 + at - time.monotonic())):
                    return
                if action == "inject":
                    fault = self.nemesis.inject(event.fault, event.target, **event.params)
                    live[id(event)] = (fault, self.history.now())
                elif id(event) in live:
                    close(event, *live.pop(id(event)))
        except Exception as e:  # noqa: BLE001 - reported by wait()
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            events = {id(e): e for e in self.schedule}
            for key, (fault, on) in list(live.items()):
                close(events[key], fault, on)

    def start(self) -> "Storm":
        self._thread = threading.Thread(target=self._run, daemon=True, name="storm")
        self._thread.start()
        return self

    def wait(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._stop.set()
                self._thread.join(10)
                raise RuntimeError(f"the fault schedule did not finish within {timeout:g} s")
        if self.errors:
            raise RuntimeError("the fault schedule failed: " + "; ".join(self.errors))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


# -- time --------------------------------------------------------------------------------------------

class WallClock:
    """The machine's wall clock, which every gateway's Clock follows unless skewed: the target of
    the ``window-boundary`` condition, named ``clock`` in the history."""

    name = "clock"

    def __repr__(self) -> str:
        return "WALL_CLOCK"


WALL_CLOCK = WallClock()


def next_boundary(window_s: float, now: float | None = None) -> float:
    """Wall-clock time at which the next fixed window of ``window_s`` seconds begins."""
    now = time.time() if now is None else now
    return (int(now // window_s) + 1) * window_s


def clear_of_boundaries(window_s: float, need_s: float) -> None:
    """Wait, if need be, so that the next ``need_s`` seconds hold no boundary of a fixed window
    of ``window_s`` on the machine's clock (a short burst that must not straddle one)."""
    if need_s >= window_s:
        return
    if next_boundary(window_s) - time.time() < need_s:
        sleep_until(next_boundary(window_s) + 0.01)


def sleep_until(t: float, clock: Callable[[], float] = time.time) -> None:
    while True:
        left = t - clock()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


# -- what the component declares and leaves behind ---------------------------------------------

def declared_policy(component: str | Path, class_name: str = "RateLimiter") -> str | None:
    """The string literal assigned to ``FAILURE_POLICY`` in the class body, or None."""
    try:
        tree = ast.parse(Path(component).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            found = None
            for stmt in node.body:
                targets: list[ast.expr] = []
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, value = [stmt.target], stmt.value
                if any(isinstance(t, ast.Name) and t.id == "FAILURE_POLICY" for t in targets):
                    found = value.value if isinstance(value, ast.Constant) and isinstance(
                        value.value, str) else None
            return found
    return None


def key_ttls(redis_url: str, prefix: str) -> dict[str, int]:
    """PTTL (ms; -1 = no expiry, -2 = gone) of every key under ``prefix``, read by the grader."""
    import redis
    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.pttl(k)
        ttls = pipe.execute() if keys else []
        return {k.decode("utf-8", "backslashreplace"): int(t) for k, t in zip(keys, ttls)}
    finally:
        r.close()


def wait_redis(url: str, deadline_s: float = 10.0) -> None:
    """Until Redis at ``url`` answers PING (after a restart), or raise TimeoutError."""
    import redis
    end = time.monotonic() + deadline_s
    while True:
        try:
            r = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                if r.ping():
                    return
            finally:
                r.close()
        except redis.RedisError:
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"Redis at {url} did not answer within {deadline_s:g}s")
        time.sleep(0.05)


# -- judging ---------------------------------------------------------------------------------------

def between(history, t0: float, t1: float, f: str = "allow"):
    """The decisions whose call and answer both fell within [t0, t1] (history clock); a call
    that never answered counts when it started within."""
    from rig.checkers import decisions_from_history
    return [d for d in decisions_from_history(history, f)
            if t0 <= d.start <= t1 and (d.end is None or d.end <= t1)]


def verdict_of(decisions, *, bound: bool = True, envelope: bool = True, starvation: bool = True,
               limit: int = LIMIT, window_s: float = WINDOW_S, bound_s: float = BOUND_S,
               faulted: Sequence[Any] = (), name: str = "rate-limit"):
    """Decision types, the decision bound, the envelope and fair share over ``decisions``
    (``faulted``: the same clients' decisions taken while Redis failed, not judged)."""
    from rig import checkers as c
    parts = [c.check_decision_types(decisions)]
    if bound:
        parts.append(c.check_bounded(decisions, bound_s))
    if envelope:
        parts.append(c.check_envelope(decisions, limit, window_s))
    if starvation:
        parts.append(c.check_starvation(decisions, limit, window_s, faulted=faulted))
    return c.combine(parts, name)


def judge(decisions, history, hint: str, **kw: Any) -> None:
    """Fail the running test (through ``expect_valid``) if ``verdict_of(decisions)`` has anomalies."""
    from splitbrain.grading import expect_valid
    expect_valid(verdict_of(decisions, **kw), history, hint=hint)


def _overlaps(d: Any, w: Any) -> bool:
    end = d.end if d.end is not None else math.inf
    return w.covers(d.start, end)


def _inside(d: Any, w: Any) -> bool:
    end = d.end if d.end is not None else math.inf
    return w.start <= d.start and end <= (math.inf if w.end is None else w.end)


def judge_history(history: Any, config: Config = DEFAULT, policy: Any = None, *,
                  links: Mapping[str, Iterable[str]] | None = None,
                  ttls: Mapping[str, int] | None = None, failing: Sequence[str] = FAILING,
                  clients: Iterable[str] | None = None,
                  in_effect: Sequence[Any] | None = None, f: str = "allow",
                  name: str = "rate limit"):
    """Every guarantee of the lab over the whole ``history``: the verdict to fail with.

    A decision is *faulted* when it overlaps a window of a fault in ``failing`` (default
    :data:`FAILING`; a test whose stalls are all far shorter than ``timeout_s`` passes none) on its
    own gateway's link (``links``: fault target -> the gateways behind it; a target not in it, such
    as a Redis server every gateway uses, reaches them all). Faulted decisions are judged only for
    the declared ``policy`` (those entirely inside an :data:`UNREACHABLE` fault, or inside a
    latency of at least twice ``timeout_s``) and the bound; the others for the bound, the
    envelope and fair share, each per stretch between two Redis restarts (a restarted Redis has
    forgotten every count: the chapter judges the envelope from the restart on, and every client
    is owed a fresh limit). ``ttls``: the keys' expiries, if read. ``clients``: judge only these
    clients' decisions (a test whose clients have limits of their own).

    The nemesis records a fault's start just before it takes effect and its end just after it
    is healed. A test that calls only inside ``with nemesis.fault(...)`` needs nothing more; under
    a schedule that injects while calls are in flight, pass ``in_effect`` (a :class:`Storm`'s
    ``windows``: from when each injection had returned to when its heal began), and the policy
    is judged only on the decisions that fell entirely inside those: Redis may still, or
    already, have answered the others.
    """
    from rig import checkers as c
    ds = c.decisions_from_history(history, f)
    if clients is not None:
        keep = set(clients)
        ds = [d for d in ds if d.client in keep]
    windows = history.fault_windows()
    links = {k: set(v) for k, v in (links or {}).items()}

    def reaches(w: Any, d: Any) -> bool:
        return w.target not in links or d.process in links[w.target]

    def hard(w: Any) -> bool:
        if w.name in UNREACHABLE:
            return w.name != "restart" or bool(w.params.get("down"))
        return w.name == "latency" and float(w.params.get("ms", 0)) >= 2000 * config.timeout_s

    bad_windows = [w for w in windows if w.name in failing or hard(w)]
    faulted = [d for d in ds if any(reaches(w, d) and _overlaps(d, w) for w in bad_windows)]
    bad = {id(d) for d in faulted}
    clean = [d for d in ds if id(d) not in bad]
    restarts = sorted(w.end if w.end is not None else w.start for w in windows
                      if w.name == "restart")
    def stretch(d: Any) -> int:
        return sum(1 for t in restarts if t <= d.start)

    parts = [c.check_decisions(ds, config.bound_s)]
    for i in range(len(restarts) + 1):
        mine = [d for d in clean if stretch(d) == i]
        if mine:
            parts.append(c.check_envelope(mine, config.limit, config.window_s))
            parts.append(c.check_starvation(mine, config.limit, config.window_s,
                                            faulted=[d for d in faulted if stretch(d) == i]))
    police = [w for w in (in_effect if in_effect is not None else bad_windows) if hard(w)]
    policed = [d for d in faulted if any(reaches(w, d) and _inside(d, w) for w in police)]
    if policed:
        parts.append(c.check_policy(policed, policy))
    if ttls is not None:
        parts.append(c.check_key_expiry(ttls, config.max_ttl_ms))
    return c.combine(parts, name)


def expect_guarantees(history: Any, hint: str, config: Config = DEFAULT, policy: Any = None,
                      **kw: Any) -> None:
    """Fail the running test (through ``expect_valid``) unless :func:`judge_history` holds."""
    from splitbrain.grading import expect_valid
    expect_valid(judge_history(history, config, policy, **kw), history, hint=hint)
