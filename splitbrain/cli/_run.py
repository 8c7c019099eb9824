"""Running gradings from the command line: the services first (one clear message when they
cannot be had), and Ctrl-C that stops the gradings at once without touching the servers."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading


def child_pids(pid: int) -> set[int] | None:
    """The processes whose parent is ``pid`` (empty once ``pid`` is gone); None if unknown."""
    import psutil
    try:
        return {p.pid for p in psutil.Process(pid).children()}
    except psutil.NoSuchProcess:
        return set()
    except psutil.Error:
        return None


@contextlib.contextmanager
def interruptible(on_stop=None):
    """Ctrl-C during gradings: every grading pytest process of this command (a child in its own
    session) gets SIGINT, so it cleans up its workers and namespaces and ends at once, and so
    does any grading that starts after, until the block ends; ``on_stop`` runs first (e.g. to
    cancel queued work). The caller sees the returned event set. A second Ctrl-C interrupts as
    usual."""
    stopped, finished = threading.Event(), threading.Event()

    def children() -> set[int] | None:
        return child_pids(os.getpid())
    before = children() or set()  # servers this command started stay up

    def stop_children() -> None:
        while not finished.is_set():
            kids = children()
            if kids is None:
                return
            for pid in kids - before:
                try:
                    if os.getpgid(pid) == pid:  # a grading session, not a helper of ours
                        os.killpg(pid, signal.SIGINT)
                except OSError:
                    pass
            finished.wait(0.5)

    def on_sigint(signum, frame):
        if stopped.is_set():
            raise KeyboardInterrupt
        stopped.set()
        print("\nstopping the grading (its workers and test data are cleaned up)...",
              file=sys.stderr)
        if on_stop:
            on_stop()
        threading.Thread(target=stop_children, daemon=True).start()
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stopped
    finally:
        finished.set()
        signal.signal(signal.SIGINT, previous)


def services_problem(labs) -> str | None:
    """Start (or find) the services the labs need before grading; what is wrong when they cannot
    be had, so that no grading runs only to report every test as not graded."""
    from rich.console import Console
    from splitbrain.services import ServiceError, ensure_up
    names = sorted({n for lab in labs for n in lab.services})
    if not names:
        return None
    try:
        with Console(stderr=True).status(f"starting {', '.join(names)} if needed (the first "
                                         f"start copies a Postgres cluster)..."):
            ensure_up(names)
    except ServiceError as e:
        return (f"the services the grading needs are not available: {e}\n`splitbrain status` "
                f"shows them, `splitbrain doctor` says what is missing.")
    return None


@contextlib.contextmanager
def working(text: str):
    """A spinner with ``text`` on a terminal; elsewhere (a notebook's ``!splitbrain``, a log) the
    text once on stderr, so a long wait is never silent."""
    from rich.console import Console
    err = Console(stderr=True, highlight=False)
    if err.is_terminal:
        with err.status(text):
            yield
    else:
        print(text, file=sys.stderr, flush=True)
        yield
