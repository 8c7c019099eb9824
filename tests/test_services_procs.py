"""Process trees through psutil: descendants that left the process group, orphans left in it,
and the identity token that tells the kit's own servers from a reused pid."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from splitbrain.services import procs

ROOT = Path(__file__).resolve().parent.parent

# a parent that starts a child in a session of its own (as Postgres backends and many servers
# do), prints the child's pid, then waits
SETSID_CHILD = ("import subprocess, sys, time\n"
                "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
                "start_new_session=True)\n"
                "print(c.pid, flush=True)\n"
                "time.sleep(120)\n")


def _start(code: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    return p, int(p.stdout.readline())


def _cleanup(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_tree_finds_a_child_in_its_own_session_and_kill_tree_kills_it():
    parent, child = _start(SETSID_CHILD)
    try:
        assert procs.tree(parent.pid) == [parent.pid, child]
        assert child not in procs.group_members(parent.pid)   # the group alone would miss it
        assert procs.kill_tree(parent.pid, 10.0)
        assert not procs.alive(child) and not procs.alive(parent.pid)
        assert procs.tree(parent.pid) == []
    finally:
        _cleanup(child, parent.pid)
        parent.wait(5)


def test_kill_tree_also_waits_for_an_orphan_left_in_the_group():
    # the middle process exits at once: its child is an orphan, no longer a descendant, still
    # in the group
    code = ("import subprocess, sys\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(c.pid, flush=True)\n")
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                               f"m = subprocess.run([sys.executable, '-c', {code!r}], "
                               "capture_output=True, text=True)\n"
                               "print(m.stdout.strip(), flush=True)\n"
                               "time.sleep(120)\n"],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    orphan = int(leader.stdout.readline())
    try:
        assert orphan not in procs.tree(leader.pid)
        assert orphan in procs.group_members(leader.pid)
        assert procs.kill_tree(leader.pid, 10.0)
        assert not procs.alive(orphan)
    finally:
        _cleanup(orphan, leader.pid)
        leader.wait(5)


def test_stop_pid_stops_the_group_and_only_the_process_it_recorded():
    parent, child = _start(SETSID_CHILD)
    try:
        started = procs.start_time(parent.pid)
        assert started and procs.start_time(parent.pid) == started       # stable
        assert not procs.is_same_process(parent.pid, "not-" + started)   # a reused pid
        assert not procs.stop_pid(parent.pid, "not-" + started)
        assert procs.alive(parent.pid)
        # SIGTERM reaches the group; the child in its own session ignores its parent's end and
        # is killed when the wait runs out
        assert procs.stop_pid(parent.pid, started, timeout=1)
        assert not procs.alive(parent.pid) and not procs.alive(child)
    finally:
        _cleanup(child, parent.pid)
        parent.wait(5)


def test_identity_of_a_process():
    me = os.getpid()
    assert procs.alive(me) and procs.is_same_process(me, procs.start_time(me))
    assert "python" in procs.cmdline(me).lower()
    assert not procs.alive(0) and not procs.alive(-1) and procs.start_time(2 ** 22 + 12345) is None
    assert procs.cmdline(2 ** 22 + 12345) == ""
    if sys.platform.startswith("linux"):
        # the token earlier releases recorded (state files, namespace owners): clock ticks since
        # boot, field 22 of /proc/PID/stat
        stat = Path(f"/proc/{me}/stat").read_text()
        assert procs.start_time(me) == stat[stat.rindex(")") + 2:].split()[19]


def test_a_zombie_counts_as_gone():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    assert procs.wait_until(lambda: not procs.alive(p.pid), 10)   # exited, not reaped yet
    assert p.wait(5) == 0


def test_no_module_reads_proc_by_hand_or_runs_pgrep():
    pattern = re.compile(r"""["'/]proc/|\bpgrep\b|\[\s*["']ps["']""")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "splitbrain").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, f"use psutil (splitbrain.services.procs) instead: {hits}"
