"""What the grader knows about the test that is running now (set by the plugin, read by
``expect_valid``): its name, seed, artifacts folder, hints, and where to record anomaly kinds."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TestContext:
    __test__ = False  # not a pytest test class

    nodeid: str = ""
    seed: int = 0
    lab_slug: str = ""
    artifacts: Path | None = None
    hints: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()
    user_properties: list = field(default_factory=list)
    histories: list = field(default_factory=list)

    @property
    def safe_name(self) -> str:
        file, _, name = self.nodeid.rpartition("::")
        stem = Path(file.split("::")[0]).stem if file else ""
        name = f"{stem}.{name}" if stem and stem != name else (name or "test")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]

    def artifact(self, suffix: str) -> Path | None:
        if self.artifacts is None:
            return None
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self.artifacts / f"{self.safe_name}{suffix}"

    def record(self, key: str, value: Any) -> None:
        self.user_properties.append((key, value))


CURRENT = TestContext()


def current() -> TestContext:
    return CURRENT


def set_current(ctx: TestContext) -> None:
    global CURRENT
    CURRENT = ctx
