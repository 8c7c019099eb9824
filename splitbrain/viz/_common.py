"""Shared plumbing for the pictures: figures without pyplot, colours, saving, fault windows."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


OUTCOME_COLORS = {"ok": "#4c9a5b", "fail": "#c8553d", "info": "#e0a030", "open": "#9aa5b1"}
FAULT_COLOR = "#7b68ee"
ANOMALY_COLOR = "#d62728"
FORMATS = (".png", ".svg", ".pdf")


class Picture(Figure):
    """A Figure that shows itself in Jupyter even when pyplot (and its inline backend) was never
    imported: IPython falls back to ``_repr_png_``."""

    def _repr_png_(self) -> bytes:
        import io
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=110)
        return buf.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A Figure with an Agg canvas: renders headless, displays inline in Jupyter, no pyplot state."""
    fig = Picture(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (.png, .svg or .pdf, from the suffix); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"save() writes {', '.join(FORMATS)} files; {path.name!r} has suffix "
                         f"{path.suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix[1:].lower(), dpi=110)
    return path


def short(value: Any, limit: int = 14) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finish(fig: Figure, path: str | Path | None) -> Any:
    """Return the figure, or save it and return the path when ``path`` is given."""
    return save(fig, path) if path is not None else fig
