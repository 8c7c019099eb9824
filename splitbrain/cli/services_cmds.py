"""`splitbrain up | down | status | doctor | start`: the services, and the learner's main job."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from splitbrain.cli._help import parser
from splitbrain.cli._run import console, working
from splitbrain.services import BACKENDS, SERVICES, ServiceError, down, ensure_up, status
from splitbrain.services.external import redact


class _Lazy:
    """A console made on first use, for the stream as it is when the command runs (a terminal:
    colours; a notebook or a pipe: plain text)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr, self._console = stderr, None

    def __getattr__(self, name: str):
        if self._console is None:
            self._console = console(stderr=self._stderr)
        return getattr(self._console, name)


err = _Lazy(stderr=True)
out = _Lazy(stderr=False)


def _names(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in SERVICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown service {', '.join(bad)}: choose from {', '.join(SERVICES)}")
    return names


BACKEND_HELP = ("where the services come from: embedded (child processes of the kit, no Docker), "
                "external (the servers named by SPLITBRAIN_POSTGRES_URL, SPLITBRAIN_REDIS_URL, "
                "SPLITBRAIN_KAFKA_BOOTSTRAP), docker (docker/compose.yaml; needs a running "
                "engine). Default: SPLITBRAIN_BACKEND if set, else external for each service "
                "whose variable is set, else embedded")
ONLY_HELP = "comma-separated subset of " + ",".join(SERVICES) + " (default: all three)"


def register(sub) -> None:
    p = parser(sub, "up", "start Postgres, Redis and Kafka (they keep running)",
               "Start the services the labs need and leave them running after the command "
               "returns. Running `up` again reuses the running servers, their ports and "
               "passwords. The first embedded start copies a Postgres cluster (a few seconds).",
               [("splitbrain up", "all three; embedded unless URLs are set"),
                ("splitbrain up --only redis", "just Redis"),
                ("splitbrain up --backend external", "the servers in SPLITBRAIN_*_URL")])
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--only", type=_names, metavar="NAMES", help=ONLY_HELP)
    p.set_defaults(func=cmd_up)

    p = parser(sub, "down", "stop the services `up` started",
               "Stop the services `splitbrain up` started; external servers are never touched. "
               "The embedded servers' data (in /dev/shm, which is memory, where the machine has "
               "it) is kept for the next `up` unless --purge is given; `down` says where and how "
               "much.",
               [("splitbrain down", "stop all three"),
                ("splitbrain down --only kafka", "stop the broker only"),
                ("splitbrain down --purge", "stop and delete the kept data")])
    p.add_argument("--only", type=_names, metavar="NAMES", help=ONLY_HELP)
    p.add_argument("--purge", action="store_true",
                   help="also delete the kept embedded data (default: keep it)")
    p.set_defaults(func=cmd_down)

    p = parser(sub, "status", "each service's backend, URL and health",
               "Each recorded service's backend, URL (password hidden in the table) and whether "
               "it answers now. Exit 0 when every service answers, 1 otherwise.",
               [("splitbrain status", "a table"),
                ("splitbrain status --json", "JSON only, for scripts")])
    p.add_argument("--json", action="store_true",
                   help='print only JSON on stdout: {"services": {NAME: {"backend", "url", '
                        '"healthy"}}}; the URLs include credentials')
    p.set_defaults(func=cmd_status)

    p = parser(sub, "doctor", "what is missing on this machine, and how to fix it",
               "Check Python, the Postgres, Redis and Kafka binaries, JupyterLab, MkDocs, the "
               "configured external servers and the Docker engine, and print the command that "
               "fixes each problem. Exit 0 when nothing required is missing.",
               [("splitbrain doctor", "")])
    p.set_defaults(func=cmd_doctor)

    p = parser(sub, "start", "services up, JupyterLab on labs/, the book; Ctrl-C stops it",
               "What a learner runs first. Starts the services, JupyterLab on labs/ and the "
               "book served locally, prints their addresses and runs until Ctrl-C, which stops "
               "JupyterLab, the book and the services this command started.",
               [("splitbrain start", "everything"),
                ("splitbrain start --no-book", "services and JupyterLab only"),
                ("splitbrain start --check", "start, check that every part answers, stop")])
    p.add_argument("--backend", choices=BACKENDS, help=BACKEND_HELP)
    p.add_argument("--no-lab", action="store_true", help="do not start JupyterLab")
    p.add_argument("--no-book", action="store_true", help="do not serve the book")
    p.add_argument("--exit-after", type=float, metavar="SECONDS",
                   help="stop everything after this many seconds (default: run until Ctrl-C)")
    p.add_argument("--check", action="store_true",
                   help="start everything, check that it answers, stop; exit 0 if all answered")
    p.set_defaults(func=cmd_start)


def _show_table(st: dict) -> None:
    t = Table(title="Split Brain services")
    for col in ("service", "backend", "url", "health"):
        t.add_column(col)
    for name, s in st["services"].items():
        t.add_row(name, s["backend"], redact(s["url"]),
                  "[green]healthy[/]" if s["healthy"] else "[red]not answering[/]")
    out.print(t)


def cmd_up(args) -> int:
    try:
        with working("starting services (the first start copies a Postgres cluster)..."):
            ep = ensure_up(args.only, backend=args.backend)
    except ServiceError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 1
    except KeyboardInterrupt:
        err.print("stopped before every service was up: run `splitbrain up` again, or "
                  "`splitbrain down` to stop what had started.", highlight=False)
        return 130
    for note in ep.notes:
        err.print(f"[yellow]note:[/] {escape(str(note))}", highlight=False)
    external = [n for n, b in ep.backends.items() if b == "external"]
    from splitbrain.services import external as ext
    for name in external:  # a changed variable does not replace a recorded server by itself
        wanted = ext.configured_url(name)
        if wanted and wanted != ep.url(name):
            err.print(f"[yellow]note:[/] {ext.ENV[name]} is {escape(redact(wanted))} but the "
                      f"recorded {escape(redact(ep.url(name)))} is still used; `splitbrain down "
                      f"--only {name}` then `splitbrain up` switches to it.", highlight=False)
    if ep.started:
        err.print(f"started: {', '.join(ep.started)} (they keep running after this command; "
                  f"`splitbrain down` stops them)", highlight=False)
    if external:
        err.print(f"using the external {', '.join(external)} (the kit never starts or stops "
                  f"external servers)", highlight=False)
    if not ep.started and not external:
        err.print("started: nothing (all were running)", highlight=False)
    st = status()
    _show_table(st)
    if all(s["healthy"] for s in st["services"].values()):
        err.print("next: `splitbrain start` for JupyterLab and the book, or `splitbrain check "
                  "LAB` to grade a lab", highlight=False)
        return 0
    err.print("[red]some services do not answer[/]: `splitbrain doctor` says why")
    return 1


def cmd_down(args) -> int:
    from splitbrain.services import runtime, state
    before = {n: r.get("backend") for n, r in state.read().items()}
    data = runtime.run_dir(create=False)   # where the embedded servers keep their data
    size_before = _size(data)
    try:
        stopped = down(args.only, purge=args.purge)
    except ServiceError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 1
    ours = [n for n in stopped if before.get(n) != "external"]
    theirs = [n for n in stopped if before.get(n) == "external"]
    if ours:
        err.print(f"stopped: {', '.join(ours)}", highlight=False)
    if theirs:
        err.print(f"forgotten: {', '.join(theirs)} (external servers keep running)",
                  highlight=False)
    if not stopped:
        err.print("nothing was running")
    for line in _data_notes(data, size_before, args.purge):
        err.print(line, highlight=False)
    return 0


def _size(path: Path) -> int:
    """Bytes a folder holds (allocated blocks: what tmpfs keeps in memory); 0 if there is none."""
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except OSError:
                pass
    return total


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _data_notes(data: Path, before: int, purge: bool) -> list[str]:
    """What `down` leaves of the embedded servers' data (in memory when it lives in /dev/shm),
    and how to delete it; with --purge, what it deleted and what stays."""
    memory = " (/dev/shm is memory)" if str(data).startswith("/dev/shm/") else ""
    now = _size(data)
    lines = []
    if purge and before and not data.exists():
        lines.append(f"deleted: the embedded data, {_mb(before)} in {data}")
    elif purge and now:
        lines.append(f"kept: the embedded data, {_mb(now)} in {data}{memory}, because embedded "
                     f"servers of this checkout still run; `splitbrain down --purge` without "
                     f"--only deletes it")
    elif now:
        lines.append(f"kept for the next `up`: the embedded data, {_mb(now)} in {data}{memory}; "
                     f"`splitbrain down --purge` deletes it")
    cache = data.parent / "cache"   # splitbrain.services.runtime.cache_dir()
    template = _size(cache) if purge else 0
    if template:
        lines.append(f"kept: the Postgres template every checkout of yours copies, "
                     f"{_mb(template)} in {cache}")
    return lines


def cmd_status(args) -> int:
    st = status()
    if args.json:
        print(json.dumps(st, indent=2))
    elif st["services"]:
        _show_table(st)
    else:
        err.print("no services recorded: run `splitbrain up`")
    ok = bool(st["services"]) and all(s["healthy"] for s in st["services"].values())
    if st["services"] and not ok and not args.json:
        err.print("a service is not answering: `splitbrain up` restarts the kit's own servers; "
                  "for an external one, check that server. `splitbrain doctor` lists what is "
                  "missing.", highlight=False)
    return 0 if ok else 1


def cmd_doctor(args) -> int:
    from splitbrain.services.doctor import run_checks
    checks = run_checks()
    t = Table(title="splitbrain doctor")
    for col in ("check", "result", "fix"):
        t.add_column(col, overflow="fold")
    for c in checks:
        mark = ("[green]ok[/]" if c.ok else "[yellow]optional[/]" if c.optional
                else "[red]missing[/]")
        t.add_row(c.name, f"{mark} {c.detail}", "" if c.ok else c.fix)
    out.print(t)
    bad = [c for c in checks if not c.ok and not c.optional]
    if bad:
        err.print(f"[red]{len(bad)} problem(s)[/]: run the command in the fix column, then "
                  f"`splitbrain doctor` again.")
        return 1
    err.print("[green]ready[/]: `splitbrain start`")
    return 0


def cmd_start(args) -> int:
    from splitbrain.services.launcher import run_start
    try:
        return run_start(args, out, err)
    except ServiceError as e:
        err.print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 1


