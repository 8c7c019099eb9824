"""Lab 09 hidden tests: an application server writes to a Postgres primary and reads from two
streaming standbys while the standbys stop replaying, apply every commit a minute late, fall
apart from each other (one far behind), stop receiving WAL between two writes, or one is promoted,
stops following the primary and restarts.

Lag is held, not hoped for: replay is paused (or delayed a minute) before the step that needs it,
and time passing is a step of the application server's clock (``clock-jump``), so a design that
trusts a time window meets a lag longer than its window on every run. A standby is held between
two writes by cutting its WAL stream after the first (``stream-cut``) and resuming its replay; a
read that must wait is sent first, and the standby catches up once the application has seen it
behind. Every verdict comes from the history and the grader's own view of what each standby holds
(``world.expect``; ``rig.checkers.check_sessions``)."""
import contextlib
from concurrent.futures import TimeoutError as ReadTimeout

import pytest

from splitbrain.sandbox.protocol import RemoteError, SandboxError

LONG_AGO = {"step": 600.0, "monotonic": True}     # the lag outlasts any window: ten minutes pass

WINDOW_HINT = ("The session wrote, and its read went to a standby that had not replayed the "
               "write: replay was paused for longer than any time window after a write. No window "
               "is long enough; compare positions instead. After the COMMIT, keep the session's "
               "token, pg_current_wal_insert_lsn() on the primary; a standby serves the session "
               "only once pg_last_wal_replay_lsn() has reached it, else (after a short wait) the "
               "primary does.")

WAIT_MS = 60_000       # an application server that may wait a minute for a standby


def read(app, session, key, hint):
    """``app.get``; a read that raises fails the test with ``hint`` (and the error)."""
    try:
        return app.get(session, key)
    except RemoteError as e:
        pytest.fail(f"{hint}\n{session}'s get({key!r}) raised {e.type}: {e.message}")


def bounded(app, fut, hint, timeout=5.0, nemesis=None, faults=()):
    """The result of a get sent with ``get_async``; one still waiting after ``timeout`` seconds
    fails the test with ``hint``. Its worker is stopped then (it would answer nothing else), and
    the ``faults`` on it are healed as it stops."""
    try:
        return fut.result(timeout=timeout)
    except ReadTimeout:
        app.worker.kill()
        for f in faults:
            with contextlib.suppress(SandboxError):
                nemesis.heal(f)
        pytest.fail(hint)


@pytest.mark.points(25)
@pytest.mark.faults("replay-pause", "clock-jump")
def test_01_a_session_reads_its_own_write_while_replay_is_paused(world, nemesis):
    app = world.app()
    app.put("alice", "k", "alice-1")
    world.caught_up()
    world.on_both("replay-pause")                # both standbys stop replaying ...
    app.put("alice", "k", "alice-2")             # ... before alice's second write
    app.get("alice", "k")
    app.get("bob", "k")                          # bob never wrote: any version will do
    nemesis.inject("clock-jump", app.worker, **LONG_AGO)
    for _ in range(3):
        app.get("alice", "k")
    app.put("alice", "j", "alice-3")             # a key that is not on any standby yet
    app.get("alice", "j")
    world.expect(WINDOW_HINT, lesson="stale-read")


@pytest.mark.points(20)
@pytest.mark.faults("replay-pause", "stream-cut")
def test_02_reads_never_go_back_when_one_standby_is_far_behind(world, nemesis):
    app = world.app()
    world.other("k", "other-1")
    world.caught_up()
    nemesis.inject("replay-pause", world.b)      # b stays at other-1 ...
    world.other("k", "other-2")                  # ... while a replays other-2
    world.caught_up([world.a])
    for _ in range(6):
        app.get("bob", "k")
    app.put("bob", "j", "bob-1")                 # bob's own write, then more reads
    world.caught_up([world.a])
    for _ in range(4):
        app.get("bob", "k")
        app.get("bob", "j")
    world.expect(
        "bob read other-2 (from the standby that had replayed it), then other-1 (from the one "
        "far behind): time went backwards for him. The session's token must carry what it has "
        "read too: the standby's pg_last_wal_replay_lsn() (or the primary's "
        "pg_current_wal_insert_lsn()) returned by the statement that read, and a standby serves "
        "the session only once it has replayed that far.", lesson="non-monotonic-read")
    paused = nemesis.inject("replay-pause", world.a)   # a stops before cleo's write ...
    app.put("cleo", "i", "cleo-1")
    nemesis.inject("stream-cut", world.a)        # ... has received it, and receives nothing after
    world.other("k", "other-3")
    app.get("cleo", "k")                         # no standby has cleo's write: the primary serves
    nemesis.heal(paused)                         # a replays cleo's write, and stops short of
    world.replayed(world.a)                      # other-3
    for _ in range(2):
        app.get("cleo", "k")
    world.expect(
        "cleo's read went to the primary (no standby had her write yet) and returned other-3; "
        "then a standby that had replayed her write, but not other-3, served her other-2. A read "
        "the primary serves moves the token too: keep the primary's pg_current_wal_insert_lsn(), "
        "returned by the statement that read, as you keep a standby's replay position.",
        lesson="non-monotonic-read")


@pytest.mark.points(15)
@pytest.mark.faults("replay-pause")
def test_03_standbys_serve_the_reads_they_can(world, nemesis):
    app = world.app()
    sessions = ("carol", "dave", "erin")
    for s in sessions:
        app.put(s, f"k-{s}", f"{s}-1")
    world.caught_up()                            # the standbys have every session's write ...
    world.on_both("replay-pause")
    win = world.window()
    for s in sessions:                           # ... but not the newer writes of other users
        world.other(f"k-{s}", f"other-{s}")
    for _ in range(4):
        for s in sessions:
            app.get(s, f"k-{s}")
    world.close(win)
    world.expect(
        "Every read here could have been served by a standby: each held the session's own write, "
        "and the session had read nothing newer. The primary served them anyway. Session "
        "consistency asks a standby to have replayed as far as the session's token, not as far "
        "as the primary: other users' writes are not the session's business, and a primary that "
        "serves every read is the bottleneck the standbys were added to remove.",
        lesson="needless-primary-read")


@pytest.mark.points(10)
@pytest.mark.faults("standby-lag", "clock-jump")
def test_04_apply_delay_spike_holds_back_the_commit(world, nemesis):
    app = world.app()
    app.put("erin", "k", "erin-1")
    world.caught_up()
    world.on_both("standby-lag", ms=60_000)      # each commit is applied a minute late
    app.put("erin", "k", "erin-2")
    nemesis.inject("clock-jump", app.worker, **LONG_AGO)
    for _ in range(3):
        app.get("erin", "k")
    app.put("erin", "k", "erin-3")
    app.get("erin", "k")
    world.expect(
        "A standby delaying its commits had replayed every record of erin's write except the "
        "COMMIT, and served her the older version. The token must be the position after the "
        "COMMIT (ask pg_current_wal_insert_lsn() once the write's transaction has committed, not "
        "inside it, e.g. in its RETURNING): a standby that has replayed up to the write's own "
        "records has not replayed its commit.", lesson="stale-read")


@pytest.mark.points(10)
@pytest.mark.faults("promote", "clock-jump", "restart")
def test_05_a_promoted_standby_no_longer_serves_the_session(world, cluster, nemesis):
    c = cluster.add("c")                         # a third standby, for this test only
    try:
        world.caught_up([c])
        app = world.app(standbys=[world.a, c])
        app.put("frank", "k", "frank-1")
        world.caught_up()
        nemesis.inject("promote", c)             # c leaves: it follows the primary no more
        app.put("frank", "k", "frank-2")
        nemesis.inject("clock-jump", app.worker, **LONG_AGO)
        for _ in range(4):
            app.get("frank", "k")
        world.expect(
            "A standby was promoted (a failover drill, a botched replacement): it answers "
            "queries, but it follows the primary no more, and it served frank a version older "
            "than his own write. Its pg_last_wal_replay_lsn() stays where replay ended, so a "
            "session whose token is newer must not be served there.", lesson="stale-read")
        nemesis.inject("restart", c)             # c restarts: every connection to it breaks
        for _ in range(2):
            read(app, "frank", "k",
                 "A standby went down (its server restarted, and the connection to it broke), and "
                 "the read failed with it. A standby you cannot reach is skipped for that read: "
                 "another standby, or the primary, serves it.")
        later = world.app("later", standbys=[c, world.a])
        for _ in range(2):                       # c came back as a primary of its own: it
            read(later, "gina", "k",             # answers pg_last_wal_replay_lsn() with NULL
                 "A server that is not in recovery (a promoted standby, restarted) answers "
                 "pg_last_wal_replay_lsn() with NULL, and the read failed on it. NULL means it has "
                 "replayed nothing for anyone: it serves no session, and the read goes on to "
                 "another standby or the primary.")
        world.expect()
    finally:
        cluster.drop(c)


@pytest.mark.points(10)
@pytest.mark.faults("replay-pause", "stream-cut", "clock-drift")
def test_07_a_read_waits_for_a_standby_to_catch_up(world, nemesis):
    app = world.app(max_wait_ms=WAIT_MS)
    world.other("k", "other-1")
    world.caught_up()
    paused = nemesis.inject("replay-pause", world.a)
    nemesis.inject("replay-pause", world.b)      # no standby shows gwen's write ...
    app.put("gwen", "j", "gwen-1")
    nemesis.inject("stream-cut", world.a)        # ... a has received it, and nothing after
    world.other("k", "other-2")                  # only the primary has other-2
    win = world.window()
    fut = world.wait_asked(world.a, lambda: app.get_async("gwen", "k"))
    nemesis.heal(paused)                         # the read has seen a behind: a catches up with
    fut.result()                                 # gwen (not with other-2) while the read waits
    world.close(win)
    world.expect(
        "gwen's read began while no standby had her write, and standby a replayed it a moment "
        "later, well within max_wait_ms (a minute here); the read went to the primary anyway. "
        "When no standby has reached the session's token, poll them (pg_last_wal_replay_lsn()) "
        "until max_wait_ms has passed, and only then ask the primary.",
        lesson="needless-primary-read")
    app.put("gwen", "j", "gwen-2")               # a (cut) and b (paused) never show it
    fast = nemesis.inject("clock-drift", app.worker, rate=1000)   # a minute of its clock: 60 ms
    bounded(app, app.get_async("gwen", "j"),
            "No standby could serve gwen's read, and it waited longer than max_wait_ms by the "
            "clock the SessionStore was given (which ran a thousand times fast here): measure "
            "the wait with clock.monotonic() and clock.sleep(), then ask the primary.",
            nemesis=nemesis, faults=[fast])
    nemesis.heal(fast)
    world.expect()
