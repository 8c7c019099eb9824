"""Where things live: the project checkout, the state directory, the lab folders."""
from __future__ import annotations

from pathlib import Path

from splitbrain.settings import settings


def project_root() -> Path:
    """The checkout that holds labs/, solutions/, autograder/ and docs/.

    ``SPLITBRAIN_ROOT`` wins; else the nearest parent of the working directory that has a
    ``labs/`` folder and a ``pyproject.toml``; else the checkout this package was imported from.
    """
    root = settings.root
    if root:
        return root.resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "labs").is_dir() and (p / "pyproject.toml").is_file():
            return p
    return Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """Per-user state: service state file, logs, learner progress. ``SPLITBRAIN_HOME`` wins."""
    p = settings.home or project_root() / ".splitbrain"
    p.mkdir(parents=True, exist_ok=True)
    return p


def labs_dir() -> Path:
    return project_root() / "labs"


def solutions_dir() -> Path:
    return project_root() / "solutions"


def autograder_dir() -> Path:
    return project_root() / "autograder"


def docs_dir() -> Path:
    return project_root() / "docs"
