"""The ``splitbrain`` command. Each group of subcommands lives in its own module and registers
itself through ``register(subparsers)``; this module only assembles them."""
from __future__ import annotations

import argparse
import importlib
import sys

# module name -> registers these subcommands
_GROUPS = [
    "splitbrain.cli.services_cmds",   # up, down, status, doctor, start
    "splitbrain.cli.grading_cmds",    # labs, check, grade, verify, reset, hint
    "splitbrain.cli.book_cmds",       # book
    "splitbrain.cli.lab_cmds",        # new-lab, faults
    "splitbrain.cli.release_cmds",    # release
]

DESCRIPTION = """\
Split Brain: distributed-systems labs on real Postgres, Redis and Kafka.

A learner's session:
  splitbrain start                  services up, JupyterLab on labs/, the book served locally
  splitbrain labs                   the labs and your progress
  splitbrain check 01               grade your fix of lab 01 under injected faults, next hint
  splitbrain hint 01                the next hint; `splitbrain reset 01` restores the handout

An instructor or workshop lead:
  splitbrain doctor                 what this machine lacks, and the command that fixes it
  splitbrain verify                 every broken handout fails, every solution gets full marks
  splitbrain grade 01 submissions/  grade a class: JSON, JUnit, Gradescope, CSV gradebook
  splitbrain release ../class       the learners' repository: no solutions, no hidden tests
  splitbrain up | status | down     the services on their own (embedded, external or docker)

A lab's author:
  splitbrain new-lab 99-example      a new lab's folders, each file a template
  splitbrain faults                 the fault registry: every fault a test can inject
  splitbrain verify 99 --variants   what is left to write; then prove the lab and its variants

`splitbrain COMMAND --help` explains each command, with examples.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splitbrain", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
