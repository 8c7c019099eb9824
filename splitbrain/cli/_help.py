"""How every subcommand's ``--help`` is laid out: prose paragraphs wrapped to the terminal,
example blocks (lines that start with two spaces) kept exactly as written."""
from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps description paragraphs; keeps indented example lines; shows defaults it is given."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        parts = []
        for para in text.strip("\n").split("\n\n"):
            lines = para.splitlines()
            if any(l.startswith("  ") for l in lines[1:]) or para.startswith("  "):
                parts.append("\n".join(indent + l for l in lines))
            else:
                parts.append(textwrap.fill(" ".join(l.strip() for l in lines), width,
                                           initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(parts)


def parser(sub: argparse._SubParsersAction, name: str, summary: str, description: str,
           examples: list[tuple[str, str]]) -> argparse.ArgumentParser:
    """A subcommand whose help has a summary line (for ``splitbrain --help``), a description and
    an ``examples:`` block of (command, what it does) pairs."""
    width = max(len(c) for c, _ in examples) + 3
    block = "\n".join(f"  {c:{width}}{w}".rstrip() for c, w in examples)
    return sub.add_parser(name, help=summary, description=f"{description}\n\nexamples:\n{block}",
                          formatter_class=HelpFormatter)
