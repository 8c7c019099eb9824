"""Helpers for the kit's own tests."""
from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip on a developer machine that lacks a tool; fail under CI=true, where it must be there."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {why}")
    pytest.skip(why)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not on PATH")
    return path  # type: ignore[return-value]
