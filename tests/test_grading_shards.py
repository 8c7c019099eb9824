"""Grading a class on several machines: deterministic shards whose merge equals one run."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from splitbrain.grading.shards import ShardError, parse_shard, slice_of

FIXTURE = Path(__file__).parent / "fixtures" / "project"
ROOT = Path(__file__).resolve().parents[1]


def test_a_shard_is_written_i_of_n_counting_from_one():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad, says in (("0/4", "1 to 4"), ("5/4", "1 to 4"), ("2", "write it I/N"),
                      ("a/b", "write it I/N"), ("1/0", "1 or more")):
        with pytest.raises(ShardError, match=says):
            parse_shard(bad)


def test_the_slices_cover_the_batch_once_and_do_not_depend_on_the_order_given():
    keys = [f"learner{i:02d}-counter" for i in range(23)]
    parts = [slice_of(keys, i, 4) for i in range(1, 5)]
    assert sorted(j for p in parts for j in p) == list(range(23))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    shuffled = list(reversed(keys))
    again = [{shuffled[j] for j in slice_of(shuffled, i, 4)} for i in range(1, 5)]
    assert again == [{keys[j] for j in p} for p in parts]


def test_the_kubernetes_job_maps_its_completion_index_to_a_shard():
    job = yaml.safe_load((ROOT / "docker" / "k8s" / "grade-job.yaml").read_text())
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    env = {e["name"]: e["value"] for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert int(env["SHARDS"]) == spec["completions"] == spec["parallelism"]
    args = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert '--shard "$((JOB_COMPLETION_INDEX + 1))/$SHARDS"' in args


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "splitbrain", *args], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _normal(results: dict) -> list:
    """A batch's verdicts without what two runs measure differently (time taken, artifact paths,
    the measured figures a message quotes: how many increments a race lost, when)."""
    out = []
    for r in results["results"]:
        r = {k: v for k, v in r.items() if k not in ("duration_s", "submission")}
        r["tests"] = [{k: v for k, v in t.items()
                       if k not in ("duration_s", "history", "picture", "message")}
                      for t in r["tests"]]
        out.append(r)
    return out


@pytest.mark.slow
def test_four_shards_merged_equal_one_run_and_bad_merges_are_refused(services, tmp_path):
    env = {**os.environ, "SPLITBRAIN_ROOT": str(FIXTURE), "SPLITBRAIN_HOME": str(tmp_path / "h"),
           "SPLITBRAIN_REDIS_URL": services.redis_url,
           "SPLITBRAIN_POSTGRES_URL": services.postgres_url}
    subs = tmp_path / "subs"
    subs.mkdir()
    for i in range(6):
        src = "solutions" if i % 2 else "labs"
        shutil.copy(FIXTURE / src / "00-counter" / "counter.py", subs / f"learner{i}.py")
    one = _cli("grade", "00", str(subs), "--out", str(tmp_path / "one"), env=env)
    assert one.returncode == 0, one.stderr
    for i in range(1, 5):
        part = _cli("grade", "00", str(subs), "--shard", f"{i}/4", "--out",
                    str(tmp_path / f"part{i}"), env=env)
        assert part.returncode == 0, part.stderr
    parts = [str(tmp_path / f"part{i}") for i in range(1, 5)]
    merged = _cli("grade", "--merge", str(tmp_path / "all"), *parts, env=env)
    assert merged.returncode == 0, merged.stderr
    a, b = tmp_path / "one", tmp_path / "all"
    assert (a / "gradebook.csv").read_text() == (b / "gradebook.csv").read_text()
    assert _normal(json.loads((a / "results.json").read_text())) == \
        _normal(json.loads((b / "results.json").read_text()))
    assert sorted(p.name for p in (a / "gradescope").iterdir()) == \
        sorted(p.name for p in (b / "gradescope").iterdir())
    # a missing shard, a shard twice, shards of another seed: each refused with the reason
    missing = _cli("grade", "--merge", str(tmp_path / "x"), *parts[:3], env=env)
    assert missing.returncode == 2 and "shard(s) 4/4 missing" in missing.stderr
    twice = _cli("grade", "--merge", str(tmp_path / "x"), *parts, parts[0], env=env)
    assert twice.returncode == 2 and "given twice" in twice.stderr
    other = _cli("grade", "00", str(subs), "--shard", "1/4", "--seed", "9", "--out",
                 str(tmp_path / "other"), env=env)
    assert other.returncode == 0, other.stderr
    mixed = _cli("grade", "--merge", str(tmp_path / "x"), str(tmp_path / "other"), *parts[1:],
                 env=env)
    assert mixed.returncode == 2 and "seed" in mixed.stderr
    out_of_range = _cli("grade", "00", str(subs), "--shard", "5/4", env=env)
    assert out_of_range.returncode == 2 and "1 to 4" in out_of_range.stderr
