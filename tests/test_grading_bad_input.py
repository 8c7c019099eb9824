"""A class's batch as it really arrives, and what `grade` makes of it before grading anything:
archives (inside archives), learner folders with two candidate components or none, a shard index
out of range, and shard folders that do not belong together. Each learner is graded once or
reported by name with what to do; no submission is lost or counted twice. The services here do
not answer (port 1), so a test that graded by mistake would fail with exit 3."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from splitbrain.grading.runner import batch_keys
from splitbrain.grading.shards import ShardError, merge, parse_shard
from splitbrain.grading.submissions import read_batch
from splitbrain.lab import discover_labs

FIXTURE = Path(__file__).parent / "fixtures" / "project"
SOLUTION = (FIXTURE / "solutions" / "00-counter" / "counter.py").read_text()
HANDOUT = (FIXTURE / "labs" / "00-counter" / "counter.py").read_text()


@pytest.fixture
def lab():
    (lab,) = discover_labs(FIXTURE)
    return lab


@pytest.fixture
def env(tmp_path):
    env = {**os.environ, "SPLITBRAIN_ROOT": str(FIXTURE), "SPLITBRAIN_HOME": str(tmp_path / "h"),
           "SPLITBRAIN_REDIS_URL": "redis://127.0.0.1:1/0",
           "SPLITBRAIN_POSTGRES_URL": "postgresql://nobody@127.0.0.1:1/postgres"}
    env.pop("SPLITBRAIN_BACKEND", None)
    return env


def _cli(*args, env, cwd=None):
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def _zip(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tgz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            t.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def _lay_out(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            (root / name).write_bytes(data)
        else:
            (root / name).write_text(data)
    return root


def _read(lab, folder: Path, tmp: Path, notes: list | None = None) -> dict[str, tuple]:
    subs, said = read_batch([folder], lab, tmp / "unpacked")
    keys = batch_keys([s.name for s in subs])
    assert len(set(keys)) == len(keys)
    if notes is not None:
        notes += said
    return {k: (s.path.read_text() if s.path else None, s.problem) for k, s in zip(keys, subs)}


def _mine(n: int) -> str:
    """A component of one learner's own (tells the learners' files apart)."""
    return SOLUTION + f"\nLEARNER = {n}\n"


def test_archives_and_archives_inside_archives_are_unpacked_each_learner_once(lab, tmp_path):
    subs = _lay_out(tmp_path / "subs", {
        "alice/counter.py": _mine(1),
        "bob/bob.zip": _zip({"counter.py": _mine(2)}),
        "carol.zip": _zip({"carol/counter.py": _mine(3), "__MACOSX/carol/._counter.py": "x"}),
        "dave/dave.zip": _zip({"inner.zip": _zip({"work/counter.py": _mine(4)})}),
        "erin/erin/counter.py": _mine(5),
        "fay.tar.gz": _tgz({"counter.py": _mine(6)}),
        "gus.py": _mine(7),
    })
    (subs / "kim").mkdir()
    (subs / "kim" / "counter.py").write_text(_mine(8))
    (subs / "kim.zip").write_bytes(_zip({"counter.py": _mine(8)}))   # and its unpacked copy
    got = _read(lab, subs, tmp_path)
    assert sorted(got) == ["alice-counter", "bob-counter", "carol-counter", "dave-counter",
                           "erin-counter", "fay-counter", "gus", "kim-counter"]
    for n, key in enumerate(sorted(got), 1):
        assert got[key] == (_mine(n if key != "kim-counter" else 8), None), key


def test_archives_that_cannot_be_read_are_reported_for_their_learner(lab, tmp_path):
    subs = _lay_out(tmp_path / "subs", {
        "alice/counter.py": SOLUTION,
        "hank.rar": b"Rar!\x1a\x07\x00",
        "ivy.zip": b"not a zip at all",
        "lee.zip": _zip({"../../escaped.py": SOLUTION}),
        "ned/x.zip": _zip({"y.zip": _zip({"z.zip": _zip({"w.zip": _zip({"c.py": SOLUTION})})})}),
    })
    got = _read(lab, subs, tmp_path)
    assert got["alice-counter"] == (SOLUTION, None)
    assert ".rar file, which the grader does not unpack" in got["hank-counter"][1]
    assert "hank/" in got["hank-counter"][1] and "unpack it" in got["hank-counter"][1]
    assert "ivy.zip: not a readable .zip archive" in got["ivy-counter"][1]
    assert "leaves the archive's folder (../../escaped.py)" in got["lee-counter"][1]
    assert "nested more than 3 deep" in got["ned-counter"][1]
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path.parent / "escaped.py").exists()


def test_a_learner_folder_with_two_components_is_reported_with_both_names(lab, tmp_path, env):
    nb = {"cells": [{"cell_type": "code", "source": SOLUTION, "metadata": {}}], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    subs = _lay_out(tmp_path / "subs", {
        "alice/my_counter.py": _mine(1), "alice/counter_v2.py": _mine(2),
        "bob/counter.py": _mine(3), "bob/lab.ipynb": json.dumps(nb), "bob/test_public.py": "",
        "carol/counter.py": _mine(4), "carol/backup/counter.py": _mine(4),   # the same file
        "dan/counter.py": _mine(5), "dan/old/counter.py": _mine(6),
        "eve/counter.py": HANDOUT, "eve/lab.ipynb": json.dumps(nb),         # work in the notebook
        "fay/helpers.py": "X = 1\n", "fay/mine.py": _mine(7),
        "gina/notes.txt": "I will hand it in tomorrow",
        "hal.py": _mine(8), "hal/counter.py": _mine(9),       # a file beside its folder
        "ida.py": _mine(10), "ida/counter.py": _mine(10),
    })
    notes: list[str] = []
    got = _read(lab, subs, tmp_path, notes)
    assert got["alice-counter"][0] is None
    assert "2 possible components, counter_v2.py and my_counter.py" in got["alice-counter"][1]
    assert "Keep one (or name it counter.py)" in got["alice-counter"][1]
    assert got["bob-counter"] == (_mine(3), None)
    assert got["carol-counter"] == (_mine(4), None)
    assert "2 different files named counter.py (counter.py, old/counter.py)" in \
        got["dan-counter"][1]
    assert "class Counter" in got["eve-lab"][0] and got["eve-lab"][1] is None
    assert got["fay-mine"] == (_mine(7), None)
    assert "nothing to grade" in got["gina-counter"][1] and "notes.txt" in got["gina-counter"][1]
    assert got["hal-counter"] == (_mine(9), None)   # named like the component: graded, and
    assert "hal/: grading counter.py (left out: ../hal.py)" in notes   # the other one said
    assert "bob/: grading counter.py (left out: lab.ipynb, test_public.py)" in notes
    assert got["ida"] == (_mine(10), None) and "ida-counter" not in got
    # the command: each learner once, those that cannot be graded on their own line; the batch
    # goes on and its reports hold every learner
    only_bad = _lay_out(tmp_path / "bad", {"alice/a.py": _mine(1), "alice/b.py": _mine(2),
                                           "gina/notes.txt": "", "hank.rar": b"Rar!"})
    for _ in range(2):   # the grades folder (default ./grades/LAB) is in the batch's folder
        out = _cli("grade", "00", ".", env=env, cwd=only_bad)
        assert out.returncode == 0, out.stderr
        assert "alice-counter: could not grade: alice/: 2 possible components, a.py and b.py" \
            in out.stdout + out.stderr
        assert "gina-counter: could not grade: gina/: nothing to grade" in out.stdout + out.stderr
        grades = only_bad / "grades" / "00-counter"
        rows = (grades / "gradebook.csv").read_text().splitlines()
        assert len(rows) == 4 and all(",error" in r for r in rows[1:]), rows
    saved = json.loads((grades / "hank-counter" / "result.json").read_text())
    assert saved["score"] == 0 and ".rar" in saved["error"]


@pytest.mark.parametrize("shard, says", [
    ("5/4", "there are 4 slice(s), so I must be 1 to 4"),
    ("0/4", "there are 4 slice(s), so I must be 1 to 4"),
    ("1/0", "N, the number of slices, must be 1 or more"),
    ("2", "write it I/N")])
def test_a_shard_out_of_range_is_refused_with_the_allowed_range(shard, says, tmp_path, env):
    with pytest.raises(ShardError, match=r"^--shard .*" + says.replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_shard(shard)
    out = _cli("grade", "00", str(tmp_path / "no-such-folder"), "--shard", shard, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"error: --shard {shard}" in out.stderr or "error: --shard '" in out.stderr
    assert says in out.stderr and "no-such-folder" not in out.stderr   # refused before reading


def _shards(tmp_path, env, subs: Path, name: str, n: int = 2, *more) -> list[str]:
    parts = []
    for i in range(1, n + 1):
        part = tmp_path / f"{name}{i}"
        out = _cli("grade", "00", str(subs), "--shard", f"{i}/{n}", "--out", str(part), *more,
                   env=env)
        assert out.returncode == 0, out.stderr
        parts.append(str(part))
    return parts


def test_merging_shards_of_different_runs_or_batches_is_refused_naming_what_differs(
        tmp_path, env):
    # learners that cannot be graded: sharded and merged without a grading, like graded ones
    files = {f"l{i}/{a}.py": _mine(10 * i + j) for i in range(5) for j, a in enumerate("ab")}
    subs = _lay_out(tmp_path / "subs", files)
    one = _cli("grade", "00", str(subs), "--out", str(tmp_path / "one"), env=env)
    assert one.returncode == 0, one.stderr
    parts = _shards(tmp_path, env, subs, "part", 2)
    ok = _cli("grade", "--merge", str(tmp_path / "all"), *parts, env=env)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "all" / "gradebook.csv").read_text() == \
        (tmp_path / "one" / "gradebook.csv").read_text()

    other_seed = _shards(tmp_path, env, subs, "seed", 2, "--seed", "9")
    same_names = _lay_out(tmp_path / "section-b", {**files, "l3/a.py": _mine(99)})
    other_batch = _shards(tmp_path, env, same_names, "b", 2)
    for folders, says in (
            ([parts[0], other_seed[1]], "different seeds (seed 1: "),
            ([parts[0], other_batch[1]], "graded different files under the same names (l3-"),
            ([*parts, parts[1]], "shard 2/2 is given twice"),
            ([parts[0]], "shard(s) 2/2 missing")):
        out = _cli("grade", "--merge", str(tmp_path / "x"), *folders, env=env)
        assert out.returncode == 2 and says in out.stderr, (folders, out.stderr)
        assert "Traceback" not in out.stderr and not (tmp_path / "x").exists()
    out = _cli("grade", "--merge", str(tmp_path / "x"), parts[0], other_batch[1], env=env)
    assert "section-b" in out.stderr   # names the folders each side was given

    # a manifest edited to another lab, or to claim another shard's submissions
    manifest = Path(parts[1]) / "shard.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "lab": "01-fencing-locks"}))
    with pytest.raises(ShardError, match="different labs .*01-fencing-locks"):
        merge(tmp_path / "x", [Path(p) for p in parts])
    manifest.write_text(json.dumps({**m, "mine": m["keys"]}))
    with pytest.raises(ShardError, match="lists other submissions than its slice"):
        merge(tmp_path / "x", [Path(p) for p in parts])
    manifest.write_text(json.dumps(m))
    # a result that is not the one this shard graded
    key = m["mine"][0]
    result = Path(parts[1]) / key / "result.json"
    result.write_text(json.dumps({**json.loads(result.read_text()), "fingerprint": "old"}))
    with pytest.raises(ShardError, match=f"{key}/result.json is not the result of this run"):
        merge(tmp_path / "x", [Path(p) for p in parts])
    assert not (tmp_path / "x").exists()
