"""`splitbrain up | down | status | doctor | start`: the services, and the learner's main job."""
from __future__ import annotations

import argparse
import json


from rich.console import Console
from rich.table import Table

from splitbrain.services import BACKENDS, SERVICES, ServiceError, down, ensure_up, status
from splitbrain.services.external import redact

err = Console(stderr=True)
out = Console()


def _names(value: str | None) -> list[str] | None:
    if not value:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in SERVICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown service {', '.join(bad)}: choose from {', '.join(SERVICES)}")
    return names


def register(sub) -> None:
    p = sub.add_parser("up", help="start Postgres, Redis and Kafka (they keep running)")
    p.add_argument("--backend", choices=BACKENDS, help="default: external where URLs are "
                   "configured, else embedded")
    p.add_argument("--only", type=_names, metavar="NAMES", help="e.g. postgres,redis")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="stop the services `up` started")
    p.add_argument("--only", type=_names, metavar="NAMES")
    p.add_argument("--purge", action="store_true", help="also delete the kept embedded data")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="each service's backend, URL and health")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("doctor", help="what is missing on this machine, and how to fix it")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("start", help="services up, JupyterLab on labs/, the book; Ctrl-C stops it")
    p.add_argument("--backend", choices=BACKENDS)
    p.add_argument("--no-lab", action="store_true", help="do not start JupyterLab")
    p.add_argument("--no-book", action="store_true", help="do not serve the book")
    p.add_argument("--exit-after", type=float, metavar="SECONDS",
                   help="stop everything after this many seconds")
    p.add_argument("--check", action="store_true",
                   help="start everything, check that it answers, stop, exit 0 if all answered")
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
        with err.status("starting services (first start copies a Postgres cluster)..."):
            ep = ensure_up(args.only, backend=args.backend)
    except ServiceError as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        return 1
    for note in ep.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    started = ", ".join(ep.started) or "nothing (all were running)"
    err.print(f"started: {started}")
    _show_table(status())
    return 0


def cmd_down(args) -> int:
    try:
        stopped = down(args.only, purge=args.purge)
    except ServiceError as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        return 1
    err.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def cmd_status(args) -> int:
    st = status()
    if args.json:
        print(json.dumps(st, indent=2))
    elif st["services"]:
        _show_table(st)
    else:
        err.print("no services recorded: run `splitbrain up`")
    ok = bool(st["services"]) and all(s["healthy"] for s in st["services"].values())
    return 0 if ok else 1


def cmd_doctor(args) -> int:
    from splitbrain.services.doctor import run_checks
    checks = run_checks()
    t = Table(title="splitbrain doctor")
    for col in ("check", "result", "fix"):
        t.add_column(col, overflow="fold")
    for c in checks:
        mark = "[green]ok[/]" if c.ok else ("[yellow]optional[/]" if c.optional else "[red]missing[/]")
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
        err.print(f"[red]error:[/] {e}", highlight=False)
        return 1


