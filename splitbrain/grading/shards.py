"""Grading a class on several machines: deterministic shards of a batch, and their merge.

``splitbrain grade LAB SUBMISSIONS --shard I/N`` grades the I-th of N slices of the batch (I from
1 to N): the submissions are named as in a single run (``runner.batch_keys`` over the whole
batch), sorted by name and dealt round-robin, so every machine that sees the same folder takes the
same slice. Each shard's output folder holds the usual ``<key>/result.json`` files and a
``shard.json`` manifest (lab, seed, repeat, the slice, every key of the batch in batch order, the
fingerprint of every submission's file and the folders given).

``splitbrain grade --merge OUT DIR...`` checks that the shards belong together (same lab, seed,
repeat and batch: the same names and the same files; every slice present once, no submission in
two) and writes into OUT the per-submission results and the reports of the whole batch, in batch
order: the same as one machine grading it all. Whatever differs is named, and nothing is merged.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from splitbrain.grading.results import GradingResult

__all__ = ["Manifest", "ShardError", "merge", "parse_shard", "slice_of", "write_manifest"]

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
    fingerprints: dict[str, str] = field(default_factory=dict)  # key -> its file's fingerprint
    sources: tuple[str, ...] = ()                               # the batch as given (shown)

    def to_dict(self) -> dict:
        return {"lab": self.lab, "seed": self.seed, "repeat": self.repeat,
                "shard": f"{self.index}/{self.count}", "keys": list(self.keys),
                "mine": list(self.mine), "fingerprints": dict(self.fingerprints),
                "sources": list(self.sources)}


def parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ShardError(f"--shard {text!r}: write it I/N, e.g. --shard 2/4 (the second of four "
                         f"slices; I counts from 1)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise ShardError(f"--shard {text.strip()}: N, the number of slices, must be 1 or more, "
                         f"e.g. --shard 1/4 for the first of four")
    if not 1 <= i <= n:
        raise ShardError(f"--shard {text.strip()}: there are {n} slice(s), so I must be 1 to {n} "
                         f"(I counts from 1: --shard 1/{n} is the first, {n}/{n} the last; a "
                         f"Kubernetes completion index is I - 1)")
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
                        tuple(d["mine"]), dict(d.get("fingerprints") or {}),
                        tuple(d.get("sources") or ()))
    except FileNotFoundError:
        raise ShardError(f"{folder}: no {MANIFEST}; is it the --out folder of a `splitbrain grade "
                         f"--shard I/N` run?") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{path}: not a shard manifest ({e})") from None


def _names(keys, most: int = 4) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:most]) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _same_run(mans: list[tuple[Path, Manifest]]) -> None:
    """Refuse shards of different runs, naming what differs and the folders on each side."""
    for what, whats, get in (("lab", "labs", lambda m: m.lab),
                             ("seed", "seeds", lambda m: m.seed),
                             ("repeat", "--repeat counts", lambda m: m.repeat),
                             ("shards", "numbers of shards", lambda m: m.count)):
        values: dict = {}
        for folder, m in mans:
            values.setdefault(get(m), []).append(str(folder))
        if len(values) > 1:
            sides = "; ".join(f"{what} {v}: {', '.join(fs)}" for v, fs in values.items())
            raise ShardError(f"the shards were graded with different {whats} ({sides}); merge "
                             f"only the shards of one run (the same lab, --seed, --repeat and "
                             f"--shard I/N count)")
    f0, first = mans[0]
    for folder, m in mans[1:]:
        if m.keys != first.keys:
            only_a, only_b = set(first.keys) - set(m.keys), set(m.keys) - set(first.keys)
            diff = "; ".join(x for x in (
                f"only {f0} has {_names(only_a)}" if only_a else "",
                f"only {folder} has {_names(only_b)}" if only_b else "") if x) or \
                "the same names in another order"
            raise ShardError(f"{folder} and {f0} graded different batches ({diff})"
                             f"{_given(first, m)}; shard the same folder on every machine")
        if first.fingerprints and m.fingerprints and m.fingerprints != first.fingerprints:
            differ = [k for k in first.keys if first.fingerprints.get(k) != m.fingerprints.get(k)]
            raise ShardError(f"{folder} and {f0} graded different files under the same names "
                             f"({_names(differ)}){_given(first, m)}; shard the same batch folder, "
                             f"unchanged, on every machine")


def _given(a: Manifest, b: Manifest) -> str:
    if a.sources and b.sources and a.sources != b.sources:
        return f": one was given {' '.join(a.sources)}, the other {' '.join(b.sources)}"
    return ""


def merge(out_dir: Path, folders: list[Path]) -> tuple[str, list[GradingResult]]:
    """Check the shards, copy their results into ``out_dir``; (lab, results in batch order)."""
    if not folders:
        raise ShardError("--merge needs the output folder and at least one shard folder")
    mans = [(Path(f), _read(Path(f))) for f in folders]
    _same_run(mans)
    first = mans[0][1]
    seen: dict[int, Path] = {}
    owner: dict[str, Path] = {}
    for folder, m in mans:
        if m.index in seen:
            same = seen[m.index].resolve() == folder.resolve()
            raise ShardError(f"shard {m.index}/{m.count} is given twice: {seen[m.index]} and "
                             f"{folder}{' (the same folder)' if same else ''}; give each shard "
                             f"once, or its results would count twice")
        seen[m.index] = folder
        if set(m.mine) != {m.keys[j] for j in slice_of(list(m.keys), m.index, m.count)}:
            raise ShardError(f"{folder}/{MANIFEST}: shard {m.index}/{m.count} lists other "
                             f"submissions than its slice of the batch; grade that shard again")
        for key in m.mine:
            if key in owner:
                raise ShardError(f"{key} was graded by two shards, {owner[key]} and {folder}; "
                                 f"merge each submission once: grade the shards again")
            owner[key] = folder
    missing = sorted(set(range(1, first.count + 1)) - set(seen))
    if missing:
        raise ShardError(f"shard(s) {', '.join(f'{i}/{first.count}' for i in missing)} missing: "
                         f"merge needs all {first.count}")
    out_dir = Path(out_dir)
    by_key: dict[str, GradingResult] = {}
    copies: list[tuple[Path, str]] = []
    for folder, m in mans:   # every result checked before anything is written
        for key in m.mine:
            src = folder / key / "result.json"
            if not src.is_file():
                raise ShardError(f"{folder}: shard {m.index}/{m.count} has no result for {key} "
                                 f"(it stopped before the end?); run it again with the same "
                                 f"command, then merge")
            try:
                data = json.loads(src.read_text())
                result = GradingResult.from_dict(data)
            except (ValueError, TypeError, KeyError) as e:
                raise ShardError(f"{src}: not a result ({e}); run the shard again") from None
            want = m.fingerprints.get(key)
            if result.lab != m.lab or result.seed != m.seed or (
                    want and data.get("fingerprint") != want):
                raise ShardError(f"{src} is not the result of this run (graded with another lab, "
                                 f"seed or file); run shard {m.index}/{m.count} again with the "
                                 f"same command, then merge")
            by_key[key] = result
            copies.append((folder, key))
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder, key in copies:
        if folder.resolve() != out_dir.resolve():
            shutil.copytree(folder / key, out_dir / key, dirs_exist_ok=True)
    return first.lab, [by_key[k] for k in first.keys]
