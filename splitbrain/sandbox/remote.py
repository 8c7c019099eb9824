"""Handles on things living in a worker: remote objects and their methods."""
from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splitbrain.sandbox.client import Worker


class RemoteMethod:
    def __init__(self, worker: "Worker", obj: int | None, name: str) -> None:
        self._w, self._obj, self._name = worker, obj, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._w._call(self._obj, self._name, args, kwargs).result()

    def async_(self, *args: Any, **kwargs: Any) -> Future:
        """Send the call and return a Future at once (the worker still runs calls in order)."""
        return self._w._call(self._obj, self._name, args, kwargs)


class RemoteObject:
    """An object living in a worker; attribute access gives remote methods."""

    def __init__(self, worker: "Worker", handle: int, type_name: str = "") -> None:
        self._sb_worker, self._sb_handle, self._sb_type = worker, handle, type_name

    def __getattr__(self, name: str) -> RemoteMethod:
        if name.startswith("__"):
            raise AttributeError(name)
        return RemoteMethod(self._sb_worker, self._sb_handle, name)

    def __repr__(self) -> str:
        return f"<remote {self._sb_type or 'object'} #{self._sb_handle} in {self._sb_worker.name}>"
