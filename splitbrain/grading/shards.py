"""Grading a class on several machines: deterministic shards of a batch, and their merge.

``splitbrain grade LAB SUBMISSIONS --shard I/N`` grades the I-th of N slices of the batch (I from
1 to N): the submissions are named as in a single run (``runner.batch_keys`` over the whole
batch), sorted by name and dealt round-robin, so every machine that sees the same folder takes the
same slice. Each shard's output folder holds the usual ``<key>/result.json`` files and a
``shard.json`` manifest (lab, seed, repeat, the slice, every key of the batch in batch order).

``splitbrain grade --merge OUT DIR...`` checks that the shards belong together (same lab, seed,
repeat and batch; every slice present once) and writes into OUT the per-submission results and
the reports of the whole batch, in batch order: the same as one machine grading it all.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from splitbrain.grading.results import GradingResult

__all__ = ["ShardError", "Manifest", "parse_shard", "slice_of", "write_manifest", "merge"]

MANIFEST = "shard.json"


class ShardError(ValueError):
    """A shard request or a set of shard folders that cannot be used; says what to do."""


@dataclass(frozen=True)
class Manifest:
    lab: str
    seed: int
    repeat: int
    index: int          # 1..count
    count: int
    keys: tuple[str, ...]      # every key of the batch, in batch order
    mine: tuple[str, ...]      # the keys this shard grades

    def to_dict(self) -> dict:
        return {"lab": self.lab, "seed": self.seed, "repeat": self.repeat,
                "shard": f"{self.index}/{self.count}", "keys": list(self.keys),
                "mine": list(self.mine)}


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ShardError(f"--shard {text!r}: write it I/N, e.g. --shard 2/4 (the second of four "
                         f"slices; I counts from 1)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ShardError(f"--shard {text}: the slice must be 1 to {max(n, 1)} of {n} "
                         f"(I counts from 1; a Kubernetes completion index is I - 1)")
    return i, n


def slice_of(keys: list[str], index: int, count: int) -> list[int]:
    """Positions (in batch order) of the submissions shard ``index``/``count`` grades."""
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    return sorted(order[index - 1::count])


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    from splitbrain.grading.runner import write_atomic
    return write_atomic(Path(out_dir) / MANIFEST, json.dumps(manifest.to_dict(), indent=1))


def _read(folder: Path) -> Manifest:
    path = Path(folder) / MANIFEST
    try:
        d = json.loads(path.read_text())
        i, n = parse_shard(d["shard"])
        return Manifest(d["lab"], int(d["seed"]), int(d["repeat"]), i, n, tuple(d["keys"]),
                        tuple(d["mine"]))
    except FileNotFoundError:
        raise ShardError(f"{folder}: no {MANIFEST}; is it the --out folder of a `splitbrain grade "
                         f"--shard I/N` run?") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{path}: not a shard manifest ({e})") from None


def merge(out_dir: Path, folders: list[Path]) -> tuple[str, list[GradingResult]]:
    """Check the shards, copy their results into ``out_dir``; (lab, results in batch order)."""
    if not folders:
        raise ShardError("--merge needs the output folder and at least one shard folder")
    mans = [(Path(f), _read(Path(f))) for f in folders]
    first = mans[0][1]
    for folder, m in mans[1:]:
        for what, a, b in (("lab", first.lab, m.lab), ("seed", first.seed, m.seed),
                           ("repeat", first.repeat, m.repeat), ("shard count", first.count,
                                                                m.count)):
            if a != b:
                raise ShardError(f"{folder} was graded with {what} {b}, {mans[0][0]} with {a}: "
                                 f"shards of different runs cannot be merged")
        if m.keys != first.keys:
            raise ShardError(f"{folder} graded another batch than {mans[0][0]} (its list of "
                             f"submissions differs); shard the same folder on every machine")
    seen: dict[int, Path] = {}
    for folder, m in mans:
        if m.index in seen:
            raise ShardError(f"shard {m.index}/{m.count} is given twice: {seen[m.index]} and "
                             f"{folder}")
        seen[m.index] = folder
    missing = sorted(set(range(1, first.count + 1)) - set(seen))
    if missing:
        raise ShardError(f"shard(s) {', '.join(f'{i}/{first.count}' for i in missing)} missing: "
                         f"merge needs all {first.count}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_key: dict[str, GradingResult] = {}
    for folder, m in mans:
        for key in m.mine:
            src = folder / key / "result.json"
            if not src.is_file():
                raise ShardError(f"{folder}: shard {m.index}/{m.count} has no result for {key} "
                                 f"(it stopped before the end?); run it again with the same "
                                 f"command, then merge")
            data = json.loads(src.read_text())
            if folder.resolve() != out_dir.resolve():
                shutil.copytree(folder / key, out_dir / key, dirs_exist_ok=True)
            by_key[key] = GradingResult.from_dict(data)
    return first.lab, [by_key[k] for k in first.keys]
