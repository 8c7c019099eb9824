"""TOML files read into typed models: one place that turns a pydantic error into a sentence that
names the file, the key, what was found and what is allowed.

``lab.toml`` (``splitbrain.lab``) and a lab's ``variants.toml`` (``splitbrain.grading.variants``)
are read through :func:`load`; their models reject unknown keys (``extra="forbid"``).
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ModelFileError", "load", "read_toml", "explain"]

M = TypeVar("M", bound=BaseModel)


class ModelFileError(ValueError):
    """A TOML file that cannot be used; the message names the file, the key and the fix."""


def read_toml(path: Path, error: type[ValueError] = ModelFileError) -> dict[str, Any]:
    if not path.is_file():
        raise error(f"{path}: not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def explain(where: Path | str, model: type[BaseModel], err: ValidationError,
            hints: dict[str, str] | None = None, internal: tuple[str, ...] = ()) -> str:
    """One line per problem: ``file: field `key`: what is wrong (what to write)``.
    ``internal``: fields the program fills in, never listed as known keys of the file."""
    hints = hints or {}
    known = ", ".join(sorted(set(model.model_fields) - set(internal)))
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "function-before"))
        key = _where(loc) or "(file)"
        top = str(loc[0]) if loc else ""
        if e["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown field(s) {key}; known fields are {known}")
            continue
        if e["type"] == "missing":
            msg = "missing"
        else:
            got = e.get("input")
            text = e["msg"].removeprefix("Value error, ").replace("a valid tuple", "a list")
            msg = f"{text[:1].lower()}{text[1:]}, got {got!r}"
        hint = hints.get(top)
        lines.append(f"{where}: field `{key}`: {msg}" + (f" ({hint})" if hint else ""))
    return "\n".join(lines)


def load(path: Path, model: type[M], hints: dict[str, str] | None = None,
         error: type[ValueError] = ModelFileError, **extra: Any) -> M:
    """Read ``path`` into ``model``; ``extra`` adds fields the program fills in (the file may not
    hold them)."""
    data = read_toml(path, error)
    clash = sorted(set(data) & set(extra))
    if clash:
        raise error(f"{path}: unknown field(s) {', '.join(clash)}")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise error(explain(path, model, e, hints, internal=tuple(extra))) from None
