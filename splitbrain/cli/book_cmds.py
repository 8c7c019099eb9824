"""``splitbrain book``: regenerate (or check) the book's lab pages, build or serve the book."""
from __future__ import annotations

import argparse
import subprocess
import sys

from splitbrain import book, paths
from splitbrain.cli._help import parser


def register(sub: argparse._SubParsersAction) -> None:
    p = parser(sub, "book", "regenerate the lab pages from lab.toml; build or serve the book",
               "Regenerate docs/labs/*.md and the Labs nav from every labs/*/lab.toml. With "
               "--check nothing changes and the exit code says whether the generated files are "
               "current (CI runs this). --build and --serve run mkdocs after.",
               [("splitbrain book", "regenerate the lab pages"),
                ("splitbrain book --check", "exit 1 if a page is stale"),
                ("splitbrain book --serve", "read the book at http://127.0.0.1:8000/")])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if a generated page is stale")
    g.add_argument("--build", action="store_true", help="then `mkdocs build --strict` into site/")
    g.add_argument("--serve", action="store_true", help="then `mkdocs serve` (Ctrl-C stops it)")
    p.set_defaults(func=cmd_book)


def cmd_book(args: argparse.Namespace) -> int:
    if args.check:
        return book.main(["--check"])
    rc = book.main([])
    if rc or not (args.build or args.serve):
        return rc
    verb = ["build", "--strict"] if args.build else ["serve"]
    return subprocess.call([sys.executable, "-m", "mkdocs", *verb], cwd=paths.project_root())
