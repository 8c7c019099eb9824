"""``splitbrain new-lab NN-slug``: a new lab's folders, each file a template with TODO markers.

A lab touches only its own folders and its chapter:

    labs/NN-slug/          lab.toml, README.md, lab.ipynb, the handout component, test_public.py,
                           rig/__init__.py
    solutions/NN-slug/     the solution component, SOLUTION.md
    autograder/NN-slug/    conftest.py, test_hidden.py, variants/variants.toml
    docs/chapters/NN-slug.md

``splitbrain verify NN-slug`` then lists what is left to write (:mod:`splitbrain.grading.labcheck`);
deleting those four paths removes the lab without a trace (the book's nav is generated).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from splitbrain.lab import SLUG_RE, discover_labs

__all__ = ["ScaffoldError", "NewLab", "new_lab", "lab_paths"]


class ScaffoldError(ValueError):
    """The lab cannot be created; the message says why and what to do."""


@dataclass(frozen=True)
class NewLab:
    slug: str
    created: tuple[Path, ...]
    remove: tuple[Path, ...]


def lab_paths(root: Path, slug: str) -> tuple[Path, ...]:
    """The four places a lab lives; removing them removes the lab."""
    return (root / "labs" / slug, root / "solutions" / slug, root / "autograder" / slug,
            root / "docs" / "chapters" / f"{slug}.md")


def _names(slug: str) -> tuple[str, str]:
    words = slug[3:].split("-")
    return "_".join(words) + ".py", "".join(w.capitalize() for w in words)


def _template(name: str) -> str:
    return (resources.files("splitbrain") / "templates" / "newlab" / name).read_text("utf-8")


def _notebook(number: str, slug: str, component: str) -> str:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    nb = new_notebook(cells=[
        new_markdown_cell(f"# Lab {number}: TODO title\n\nTODO: what this notebook shows, and the "
                          f"fault that breaks `{component}`. Read the chapter first."),
        new_code_cell("from splitbrain import notebook as nb\n\n"
                      "services = nb.up([\"postgres\"])"),
        new_markdown_cell("## TODO: watch it fail\n\nTODO: run the broken component under the "
                          "fault and draw the history (`nb.experiment`, `ex.nemesis`, `nb.show`)."),
        new_code_cell(f"import sys\n!{{sys.executable}} -m splitbrain check {number} "
                      f"--submission {component}"),
    ], metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}})
    return nbformat.writes(nb)


def new_lab(root: Path, slug: str) -> NewLab:
    """Write the templates of lab ``slug`` under ``root`` (nothing is overwritten)."""
    if not SLUG_RE.match(slug):
        raise ScaffoldError(f"{slug!r} is not a lab name: two digits, a dash and lowercase words "
                            f"joined by dashes, e.g. 99-example")
    number = slug[:2]
    taken = {lab.slug[:2]: lab.slug for lab in discover_labs(root)}
    if number in taken:
        raise ScaffoldError(f"lab number {number} is taken by {taken[number]}; pick a free number "
                            f"(taken: {', '.join(sorted(taken))})")
    exists = [p for p in lab_paths(root, slug) if p.exists()]
    if exists:
        raise ScaffoldError(f"{', '.join(map(str, exists))} already exist(s); remove them or pick "
                            f"another name")
    component, cls = _names(slug)
    fill = {"slug": slug, "number": number, "component": component, "cls": cls}

    def text(name: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: fill.get(m.group(1), m.group(0)), _template(name)) \
            .replace("{{", "{").replace("}}", "}")

    lab, sol, hidden, chapter = lab_paths(root, slug)
    files = {
        lab / "lab.toml": text("lab.toml"),
        lab / "README.md": text("README.md"),
        lab / component: text("component.py.tmpl"),
        lab / "test_public.py": text("test_public.py.tmpl"),
        lab / "rig" / "__init__.py": text("rig_init.py.tmpl"),
        lab / "lab.ipynb": _notebook(number, slug, component),
        sol / component: text("solution.py.tmpl"),
        sol / "SOLUTION.md": text("SOLUTION.md"),
        hidden / "conftest.py": text("conftest.py.tmpl"),
        hidden / "test_hidden.py": text("test_hidden.py.tmpl"),
        hidden / "variants" / "variants.toml": text("variants.toml"),
        chapter: text("chapter.md"),
    }
    for path, body in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    return NewLab(slug, tuple(files), lab_paths(root, slug))
