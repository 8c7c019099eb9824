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
    be had, so that no grading runs only to report every test as not graded. What this starts is
    said on stderr, with the fact that it keeps running and how to stop it."""
    from splitbrain.services import ServiceError, ensure_up
    names = sorted({n for lab in labs for n in lab.services})
    if not names:
        return None
    try:
        with working(f"starting {', '.join(names)} if needed (the first start copies a Postgres "
                     f"cluster)..."):
            ep = ensure_up(names)
    except ServiceError as e:
        return (f"the services the grading needs are not available: {e}\n`splitbrain status` "
                f"shows them, `splitbrain doctor` says what is missing.")
    if ep.started:
        print(started_note(ep.started, ep.backend), file=sys.stderr, flush=True)
    return None


def started_note(started, backend: str) -> str:
    """What a command started and leaves running, and how to stop it."""
    they = "it keeps" if len(started) == 1 else "they keep"
    where = f" ({backend})" if backend in ("embedded", "docker") else ""
    return (f"started {', '.join(started)}{where}; {they} running after this command, for the "
            f"next one: `splitbrain down` stops {'it' if len(started) == 1 else 'them'}.")


def in_notebook() -> bool:
    """Whether this process runs under a Jupyter kernel, e.g. a notebook cell's ``!splitbrain``:
    the kernel's launcher sets JPY_PARENT_PID, and ipykernel sets TERM=xterm-color with
    CLICOLOR_FORCE=1 for the commands it runs. Such a command writes to a pseudo-terminal, but
    what it writes is kept as the cell's output: every spinner frame and escape code stays there."""
    env = os.environ
    return bool(env.get("JPY_PARENT_PID")) or (
        env.get("TERM") == "xterm-color" and env.get("CLICOLOR_FORCE") == "1")


def live(stream=None) -> bool:
    """Whether output to ``stream`` (default stderr) may be animated and coloured: a terminal,
    not a notebook's output, not TERM=dumb. ``TTY_COMPATIBLE=1`` or ``0`` decides (rich's
    variable)."""
    env = os.environ
    if env.get("TTY_COMPATIBLE") in ("0", "1"):
        return env["TTY_COMPATIBLE"] == "1"
    if env.get("TERM") == "dumb" or in_notebook():
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def console(stderr: bool = False):
    """A rich Console for the CLI's output: on a terminal, rich's own (colours, spinners);
    elsewhere (a notebook, a pipe, a log) plain text, no escape codes, nothing animated."""
    from rich.console import Console
    if live(sys.stderr if stderr else sys.stdout):
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, force_terminal=False, force_interactive=False,
                   color_system=None, no_color=True, soft_wrap=True)


@contextlib.contextmanager
def working(text: str):
    """A spinner with ``text`` on a terminal; elsewhere (a notebook's ``!splitbrain``, a log) the
    text once on stderr, one line per step, so a long wait is never silent."""
    if live(sys.stderr):
        with console(stderr=True).status(text):
            yield
    else:
        print(text, file=sys.stderr, flush=True)
        yield


@contextlib.contextmanager
def cpu_load(n: int):
    """``n`` processes that keep a core busy each while the block runs: gradings under the
    contention of a class graded in parallel or a loaded CI machine, where a test that catches
    its mistake only when timing lines up shows itself."""
    import subprocess
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                stdin=subprocess.DEVNULL) for _ in range(max(0, n))]
    try:
        yield
    finally:
        for b in burners:
            b.kill()
        for b in burners:
            b.wait()
