"""The Fault base class and the helpers every fault uses (see ``registry`` for the faults)."""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

__all__ = ["Fault", "FaultError", "target_name"]


class FaultError(ValueError):
    """A fault cannot be built or applied to this target."""


def target_name(target: Any) -> str | None:
    """A short label for a fault target, as recorded in the history (None: no target)."""
    if target is None:
        return None
    for attr in ("name", "service"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    if isinstance(target, int):
        return f"pid:{target}"
    pid = getattr(target, "pid", None)
    if isinstance(pid, int):
        return f"{type(target).__name__}:{pid}"
    return type(target).__name__


def _call(target: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``target.method``; pass ``record=False`` when the target records its own faults
    (sandbox workers do), since the nemesis records them."""
    fn = getattr(target, method)
    try:
        if "record" in inspect.signature(fn).parameters:
            kwargs.setdefault("record", False)
    except (TypeError, ValueError):
        pass
    return fn(*args, **kwargs)


def _pid(target: Any) -> int | None:
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    pid = getattr(target, "pid", None)
    return pid if isinstance(pid, int) and pid > 1 else None


class Fault:
    """A fault bound to one target. ``with fault:`` injects on entry and heals on exit.

    Class attributes document the fault once, for the registry, ``lab.toml`` validation and the
    book's fault table: ``name`` (the one name used everywhere), ``kind`` (process, network,
    clock, crash, delivery, service, or condition: a shape of the scenario that is recorded but
    changes nothing by itself), ``description`` (one sentence for a reader), ``needs`` (what the
    target must offer), ``instant`` (a one-off event, such as a kill: its end is recorded at once),
    ``freezes`` (a call into the target waits until the fault is healed, as in a pause: a
    schedule followed on a workload's steps heals it on the wall clock, since a workload that
    calls the frozen target cannot reach the step that would heal it).

    Injected through a :class:`~splitbrain.faults.schedule.Nemesis` (the one route every test
    uses), ``heal()`` also records the fault's end in the history.
    """

    name: ClassVar[str] = "fault"
    kind: ClassVar[str] = "process"
    description: ClassVar[str] = ""
    needs: ClassVar[str] = ""
    instant: ClassVar[bool] = False
    freezes: ClassVar[bool] = False

    def __init__(self, target: Any = None, **params: Any) -> None:
        self.target = target
        self.params = params
        self.active = False
        self._nemesis: Any = None
        self.check()

    def check(self) -> None:
        """Raise FaultError if the target cannot take this fault (called at construction)."""

    def inject(self) -> None:
        self._inject()
        self.active = True

    def heal(self) -> None:
        """Undo the fault (recorded in the history when a nemesis injected it)."""
        if self._nemesis is not None:
            self._nemesis.heal(self)
        else:
            self.heal_now()

    remove = heal

    def heal_now(self) -> None:
        """Undo the fault without recording anything (the nemesis calls this)."""
        if self.active:
            self.active = False
            self._heal()

    def _inject(self) -> None:
        raise NotImplementedError

    def _heal(self) -> None:
        pass

    def _fail(self) -> None:
        raise FaultError(f"fault {self.name!r} needs a target with {self.needs}; "
                         f"got {type(self.target).__name__} {self.target!r}")

    def describe(self) -> dict[str, Any]:
        return {"fault": self.name, "target": target_name(self.target),
                **{k: v for k, v in self.params.items()
                   if isinstance(v, (int, float, str, bool)) or v is None}}

    def __enter__(self) -> "Fault":
        self.inject()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.heal()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({target_name(self.target)}, {self.params})"
