"""Mutants of a solution: one small, plausible mistake each, made at the syntax tree.

A grade is only as good as the mistakes it catches, so the kit measures the hidden tests by the
mutants of a lab's solution they kill (``splitbrain verify --mutants``, :mod:`.mutants`). Each
mutant changes one place of the solution's source text (its formatting and comments are kept):

=================  =============================================================================
operator           what it does
=================  =============================================================================
compare            ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in``,
                   ``is`` <-> ``is not``
arith              ``+`` <-> ``-``, ``*`` <-> ``//``, ``+=`` <-> ``-=``
bool               ``and`` <-> ``or``; ``not x`` -> ``x``
negate-if          ``if c:`` / ``while c:`` -> ``if not (c):``
number             a small integer ``n`` (at most 10) -> ``n + 1`` and ``n - 1``; ``True`` <-> ``False``
drop-call          a call made for its effect (``conn.commit()``) -> ``pass``
drop-kwarg         one keyword argument of a call removed (``nx=True``, ``socket_timeout=t``)
return-none        ``return x`` -> ``return None``
raise-in-except    an ``except`` block's body -> ``raise`` (the error is no longer handled)
script             inside a string that holds Lua or SQL: one comparison (``<=`` <-> ``<``, ``>=``
                   <-> ``>``, ``==`` <-> ``~=``), ``and`` <-> ``or``, one option (``NX``,
                   ``XX``, ``FOR UPDATE``, ``SKIP LOCKED``, ``NOWAIT``) removed, or one line
                   dropped (a Lua ``redis.call`` statement; a SQL clause on a line of its own)
=================  =============================================================================

A mutant's id is stable while the line it changes stays the same: the operator, a hash of that
line's text and the occurrence on the line (``compare:3f9a1c:0``). Mutants that do not compile,
and mutants whose syntax tree equals the original's or another mutant's, are left out.
"""
from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from splitbrain import pyast

__all__ = ["Mutant", "mutants"]


@dataclass(frozen=True)
class Mutant:
    id: str
    operator: str
    line: int
    before: str          # the changed text of the original ...
    after: str           # ... and what the mutant has instead
    source: str          # the whole mutant

    def describe(self) -> str:
        return f"line {self.line}: {self.before.strip()!r} -> {self.after.strip()!r}"


_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
        ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.In: ("in", "not in"),
        ast.NotIn: ("not in", "in"), ast.Is: ("is", "is not"), ast.IsNot: ("is not", "is")}
_BIN = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "//"),
        ast.FloorDiv: ("//", "*")}
_SCRIPT_HINT = re.compile(r"redis\.call|\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE\b|\bWHERE\b")
_SCRIPT_SWAPS = [(r"<=", "<"), (r">=", ">"), (r"(?<![<>=~])<(?![=>])", "<="),
                 (r"(?<![<>=~])>(?![=])", ">="), (r"==", "~="), (r"~=", "=="),
                 (r"\band\b", "or"), (r"\bor\b", "and"), (r"\bAND\b", "OR"), (r"\bOR\b", "AND")]
_SCRIPT_DROPS = [r",?\s*'NX'", r",?\s*'XX'", r",\s*'PX',\s*[^,)]+", r",\s*'EX',\s*[^,)]+",
                 r"\s+FOR UPDATE", r"\s+SKIP LOCKED", r"\s+NOWAIT"]


class _Text:
    """The source as lines, with (line, col) -> offset."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def off(self, line: int, col: int) -> int:
        # ast columns are UTF-8 byte offsets
        text = self.source[self.starts[line - 1]:self.starts[line] if line < len(self.starts)
                           else None]
        return self.starts[line - 1] + len(text.encode("utf-8")[:col].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.off(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.off(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def line_of(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


def _edits(tree: ast.Module, t: _Text) -> list[tuple[str, int, int, str]]:
    """(operator, start, end, replacement) for every mutation point."""
    edits: list[tuple[str, int, int, str]] = []
    docs = _docstrings(tree)
    src = t.source

    def between(a: ast.AST, b: ast.AST, old: str, new: str, op: str) -> None:
        lo, hi = t.span(a)[1], t.span(b)[0]
        seg = src[lo:hi]
        m = re.search(r"(?<![\w<>=!])" + re.escape(old).replace(r"\ ", r"\s+") + r"(?![\w<>=])",
                      seg)
        if m:
            edits.append((op, lo + m.start(), lo + m.end(), new))

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if type(op) in _CMP:
                    old, new = _CMP[type(op)]
                    between(left, right, old, new, "compare")
                left = right
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            old, new = _BIN[type(node.op)]
            between(node.left, node.right, old, new, "arith")
        elif isinstance(node, ast.AugAssign) and type(node.op) in (ast.Add, ast.Sub):
            old, new = ("+=", "-=") if isinstance(node.op, ast.Add) else ("-=", "+=")
            between(node.target, node.value, old, new, "arith")
        elif isinstance(node, ast.BoolOp):
            word, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            for a, b in zip(node.values, node.values[1:]):
                between(a, b, word, other, "bool")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            s, e = t.span(node)
            inner = t.span(node.operand)
            edits.append(("bool", s, e, src[inner[0]:inner[1]]))
        elif isinstance(node, (ast.If, ast.While)):
            s, e = t.span(node.test)
            edits.append(("negate-if", s, e, f"not ({src[s:e]})"))
        elif isinstance(node, ast.Constant) and id(node) not in docs:
            s, e = t.span(node)
            if isinstance(node.value, bool):
                edits.append(("number", s, e, str(not node.value)))
            elif isinstance(node.value, int) and 0 <= node.value <= 10:
                for v in (node.value + 1, node.value - 1):
                    if v >= 0:
                        edits.append(("number", s, e, str(v)))
            elif isinstance(node.value, str) and _SCRIPT_HINT.search(node.value):
                seg = src[s:e]
                for pat, rep in _SCRIPT_SWAPS:
                    for m in re.finditer(pat, seg):
                        edits.append(("script", s + m.start(), s + m.end(), rep))
                for pat in _SCRIPT_DROPS:
                    for m in re.finditer(pat, seg):
                        edits.append(("script", s + m.start(), s + m.end(), ""))
                edits += _script_lines(seg, s)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            s, e = t.span(node)
            edits.append(("drop-call", s, e, "pass"))
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg is None:
                    continue
                s, e = t.span(kw)
                m = re.compile(r"\s*,\s*").match(src, e)
                if m:
                    e = m.end()
                else:
                    before = re.search(r",\s*$", src[:s])
                    if before:
                        s = before.start()
                edits.append(("drop-kwarg", s, e, ""))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            s, e = t.span(node.value)
            edits.append(("return-none", s, e, "None"))
        elif isinstance(node, ast.ExceptHandler) and node.body:
            s = t.span(node.body[0])[0]
            e = t.span(node.body[-1])[1]
            if not (len(node.body) == 1 and isinstance(node.body[0], ast.Raise)):
                edits.append(("raise-in-except", s, e, "raise"))
    return edits


_BLOCK = re.compile(r"^\s*(if|elseif|else|end|for|while|function|return|local function)\b")


def _script_lines(seg: str, base: int) -> list[tuple[str, int, int, str]]:
    """Drop one line of a script: a Lua statement inside a triple-quoted string, or one quoted
    piece of a SQL statement written as adjacent literals on several lines."""
    out = []
    pieces = list(re.finditer(r"(?m)^[ \t]*[rbuRBU]?(\"[^\"\n]*\"|'[^'\n]*')[ \t]*\n", seg))
    if len(pieces) > 1:                        # "SELECT ..." "WHERE ..." on their own lines
        for m in pieces:
            out.append(("script", base + m.start(), base + m.end(), ""))
        return out
    if seg.lstrip("rbuRBU").startswith(('"""', "'''")):
        for m in re.finditer(r"(?m)^[^\n]*redis\.call[^\n]*\n", seg):
            if not _BLOCK.match(m.group(0)):
                out.append(("script", base + m.start(), base + m.end(), ""))
    return out


def mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source`` (compiling, distinct from the original and each other)."""
    tree = pyast.parse(source)
    t = _Text(source)
    seen = {ast.dump(tree)}
    out: list[Mutant] = []
    counts: dict[tuple[str, str], int] = {}
    for op, s, e, rep in sorted(_edits(tree, t), key=lambda x: (x[1], x[2], x[0], x[3])):
        text = source[:s] + rep + source[e:]
        try:
            dump = ast.dump(pyast.parse(text))
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        if dump in seen:
            continue
        seen.add(dump)
        line = t.line_of(s)
        line_text = source.splitlines()[line - 1] if source.splitlines() else ""
        key = (op, hashlib.sha1(line_text.strip().encode()).hexdigest()[:6])
        n = counts.get(key, 0)
        counts[key] = n + 1
        out.append(Mutant(f"{op}:{key[1]}:{n}", op, line, source[s:e], rep, text))
    return out
