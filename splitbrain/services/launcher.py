"""`splitbrain start`: services up, JupyterLab on labs/, the book served locally. Ctrl-C (or
``--exit-after``/``--check``) stops the lab and the book, and the services this command started."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..paths import labs_dir, project_root
from . import procs
from .errors import BinaryMissing, ServerDied
from .manager import using
from .runtime import logs_dir


@dataclass
class Child:
    name: str
    url: str
    probe: str
    proc: subprocess.Popen
    log: Path


def _tool(name: str, pkg: str) -> str:
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    p = shutil.which(name)
    if p:
        return p
    raise BinaryMissing(name, name, f"`{Path(sys.executable).parent / 'pip'} install {pkg}`.")


def _headless() -> bool:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return True
    if sys.platform == "darwin":
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _lab(open_browser: bool) -> Child:
    port, token = procs.free_port(), secrets.token_hex(16)
    argv = [_tool("jupyter", "jupyterlab"), "lab", f"--ServerApp.root_dir={labs_dir()}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if not open_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = logs_dir() / "jupyterlab.log"
    # notebooks run `!splitbrain check ...`: the kit's own scripts come first on the kernel's PATH,
    # whether or not the learner activated the venv
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "SPLITBRAIN_ROOT": str(project_root()), "PATH": path}
    proc = procs.launch(argv, log, env=env, cwd=str(labs_dir()))
    base = f"http://127.0.0.1:{port}"
    return Child("JupyterLab", f"{base}/lab?token={token}", f"{base}/api/status?token={token}",
                 proc, log)


def _book() -> Child:
    port = procs.free_port()
    argv = [_tool("mkdocs", "mkdocs-material"), "serve", "--dev-addr", f"127.0.0.1:{port}",
            "--no-livereload"]
    log = logs_dir() / "book.log"
    proc = procs.launch(argv, log, env=dict(os.environ), cwd=str(project_root()))
    url = f"http://127.0.0.1:{port}/"
    return Child("book", url, url, proc, log)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except Exception:
        return False


def _wait(child: Child, timeout: float) -> None:
    def died() -> None:
        if child.proc.poll() is not None:
            raise ServerDied(child.name, str(child.log), procs.tail(child.log))
    if not procs.wait_until(lambda: _answers(child.probe), timeout, fail=died):
        raise ServerDied(child.name, str(child.log), procs.tail(child.log),
                         why=f"did not answer within {timeout:.0f} s")


def _stop(children: list[Child]) -> None:
    for c in children:
        if c.proc.poll() is None:
            procs.signal_group(c.proc.pid, signal.SIGTERM)
    for c in children:
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:   # and its kernels, in sessions of their own
            procs.kill_tree(c.proc.pid, 5.0)
            c.proc.wait(timeout=5)


def run_start(args, out, err) -> int:
    children: list[Child] = []
    with err.status("starting services..."):
        ctx = using(None, backend=args.backend)
        ep = ctx.__enter__()
    try:
        if not args.no_lab:
            children.append(_lab(open_browser=not _headless() and not args.check))
        if not args.no_book:
            children.append(_book())
        with err.status("waiting for JupyterLab and the book to answer..."):
            for c in children:
                _wait(c, 120.0)
        out.print(f"[bold]Split Brain is running[/] (services: {ep.backend})")
        for name in ep.backends:
            out.print(f"  {name:9} {ep.url(name).split('@')[-1]}  ({_origin(ep, name)})")
        for c in children:
            out.print(f"  {c.name:9} {c.url}")
        if args.check:
            return 0
        out.print("Press Ctrl-C to stop what this command started.")
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while deadline is None or time.monotonic() < deadline:
            for c in children:
                if c.proc.poll() is not None:
                    err.print(f"[red]{c.name} stopped[/]; its log: {c.log}")
                    return 1
            time.sleep(0.2)
        return 0
    except KeyboardInterrupt:
        what = [c.name for c in children] + list(ep.started)
        err.print(f"stopping {', '.join(what)}..." if what else "stopping...", highlight=False)
        return 0
    finally:
        _stop(children)
        ctx.__exit__(None, None, None)
        for line in _after_stop(ep, children):
            err.print(line, highlight=False)


def _origin(ep, name: str) -> str:
    if ep.backends.get(name) == "external":
        return "external: never started or stopped by the kit"
    if name in ep.started:
        return "started by this command"
    return "already running; left running"


def _after_stop(ep, children: list[Child]) -> list[str]:
    """What this command stopped, and what keeps running and why."""
    from . import state
    recs = state.read()
    stopped = [c.name for c in children] + [n for n in ep.started if n not in recs]
    before = [n for n in ep.backends if n not in ep.started and n in recs
              and ep.backends[n] != "external"]
    held = [n for n in ep.started if n in recs]
    lines = [f"stopped: {', '.join(stopped)}"] if stopped else []
    if before:
        lines.append(f"still running: {', '.join(before)} (running before `splitbrain start`; "
                     f"`splitbrain down` stops {'it' if len(before) == 1 else 'them'})")
    if held:
        lines.append(f"still running: {', '.join(held)} (another process still uses "
                     f"{'it' if len(held) == 1 else 'them'}; `splitbrain down` stops "
                     f"{'it' if len(held) == 1 else 'them'})")
    return lines
