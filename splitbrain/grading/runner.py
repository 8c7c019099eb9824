"""Grade a submission: pytest runs in a subprocess per submission, under the plugin.

The grader's process never imports learner code: pytest (trusted) runs the hidden tests, and the
tests run the learner's component only inside sandboxed workers. A crashing or hostile submission
can only fail its own tests. Tests that hit an infrastructure error are run again; if they still
fail that way they are reported as infra_error and left out of the score.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from splitbrain.grading.results import GradingResult, TestResult
from splitbrain.lab import LabInfo
from splitbrain.sandbox.zygote import SHARE_ENV
from splitbrain import pyast

# A learner's `check` (and a Gradescope run) deals the tests of one grading out to this many
# pytest processes: a grading mostly waits (leases, timeouts, stalls), so one more process than
# the cores (at most four) runs that many tests' waits side by side; on 2 cores a third process
# takes a check of lab 10 from about 10 s to 8 s and of lab 01 from 4.3 s to 3.5 s. A batch grades
# several submissions at once instead.
DURATIONS = "durations.json"   # beside a lab's hidden tests: seconds per test of its solution
CHECK_JOBS = min(4, (os.cpu_count() or 1) + 1) if (os.cpu_count() or 1) >= 2 else 1
# gradings of a batch at once: one more than the cores, since a grading mostly waits (100 of lab
# 01 take as long at four on 2 cores as at three, and a third longer at two)
BATCH_JOBS = (os.cpu_count() or 1) + 1

# pytest's unraisableexception plugin collects garbage several times after every test (a tenth
# of a grading's CPU); a grading reports learner errors through the sandbox, not through it.
INI = ("[pytest]\naddopts = -p no:cacheprovider -p no:unraisableexception\n"
       "console_output_style = classic\n")


def _private_tests(lab: LabInfo, include_public: bool, dest: Path) -> list[Path]:
    """Copy the hidden (and public) tests into a folder only the grader can read; sandboxed
    workers run as other users and cannot read them. What else a submission could read to move
    its grade (autograder/, solutions/, .git, the kit's state) is hidden from its workers by
    ``splitbrain.sandbox.hide`` (see :func:`_hidden`)."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    files: list[Path] = []
    if lab.autograder_dir.is_dir():
        shutil.copytree(lab.autograder_dir, dest / "hidden", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "variants", DURATIONS,
                                                      "selftest", "bench*.py"))
        files += sorted((dest / "hidden").glob("test_*.py"))
    if include_public:
        pub = dest / "public"
        pub.mkdir(exist_ok=True)
        if (lab.lab_dir / "conftest.py").is_file():
            shutil.copy2(lab.lab_dir / "conftest.py", pub / "conftest.py")
        for p in lab.public_tests():
            shutil.copy2(p, pub / p.name)
            files.append(pub / p.name)
    (dest / "pytest.ini").write_text(INI)
    return files


@contextlib.contextmanager
def zygote_folder():
    """A folder only the grader can enter, for the fork servers the gradings that name it share
    (``splitbrain.sandbox.zygote``); removed afterwards, which stops them. A socket's path must
    fit in 107 bytes: under a long TMPDIR the folder goes to /tmp."""
    folder = tempfile.mkdtemp(prefix="sb-z-")
    if len(folder) > 60 and os.access("/tmp", os.W_OK | os.X_OK):
        os.rmdir(folder)
        folder = tempfile.mkdtemp(prefix="sb-z-", dir="/tmp")
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _hidden(lab: LabInfo):
    """As root where workers cannot get a mount namespace of their own, hold the folders they
    must not read closed while this grading runs (given back by the last grading out)."""
    from splitbrain.sandbox import hide
    if os.geteuid() != 0 or hide.namespaces_work():
        return contextlib.nullcontext()
    return hide.held_closed(lab.root, hide.hidden_paths(lab.root))


def _run_pytest(lab: LabInfo, rundir: Path, targets: list[str], submission: Path, seed: int,
                results: Path, artifacts: Path, timeout: float,
                select: str | None = None, stop_first: bool = False,
                marks: str | None = None, zygotes: Path | None = None
                ) -> tuple[dict | None, str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "splitbrain.grading.plugin", "-q",
           "-c", str(rundir / "pytest.ini"), "--rootdir", str(rundir), *targets,
           "--lab", lab.slug, "--submission", str(submission), "--seed", str(seed),
           "--sb-results", str(results), "--sb-artifacts", str(artifacts),
           *(["-k", select] if select else []), *(["-m", marks] if marks else []),
           *(["-x"] if stop_first else [])]
    # the grading's pytest takes no options or plugins from the caller's environment: a
    # PYTEST_ADDOPTS (a --junitxml, a -x) would change how it runs, or fail it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    # nor the pytest plugins other installed packages declare (xdist, anyio, pytest-timeout...):
    # loading them costs each process a fifth of a second, and the plugin keeps its own limits
    env.update(SPLITBRAIN_ROOT=str(lab.root), PYTHONDONTWRITEBYTECODE="1",
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop(SHARE_ENV, None)
    if zygotes is not None:   # the grading's processes share their fork servers (zygote.py)
        env[SHARE_ENV] = str(zygotes)
    try:
        proc = subprocess.run(cmd, cwd=rundir, env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)
        out = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        out = f"the grading run passed its {timeout:g} s limit\n{e.stdout or ''}"
    try:
        return json.loads(results.read_text()), out
    except (OSError, ValueError):
        return None, out


def _nodes(files: list[Path]) -> list[str]:
    """Each test function of ``files`` as ``file::test_name``, in the files' order; a file whose
    tests cannot be listed that way (classes, a syntax error) stays whole."""
    import ast
    nodes: list[str] = []
    for f in files:
        try:
            tree = pyast.parse(f.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            nodes.append(str(f))
            continue
        names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name.startswith("test")]
        if not names or any(isinstance(n, ast.ClassDef) for n in tree.body):
            nodes.append(str(f))
            continue
        nodes += [f"{f}::{name}" for name in names]
    return nodes


def expected_durations(lab: LabInfo) -> dict[str, float]:
    """How long each hidden test of ``lab`` took in a grading of its solution (written by
    ``bench/bench_check.py --record``); empty when the lab has no such file."""
    try:
        data = json.loads((lab.autograder_dir / DURATIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0}


def record_durations(lab: LabInfo, runs: list[GradingResult]) -> Path:
    """Write the median duration of each test over ``runs`` (gradings of the solution) to the
    lab's durations file, which :func:`_split` reads to balance the processes of a grading."""
    import statistics
    per: dict[str, list[float]] = {}
    for r in runs:
        for t in r.tests:
            per.setdefault(t.name, []).append(t.duration_s)
    path = lab.autograder_dir / DURATIONS
    path.write_text(json.dumps({k: round(statistics.median(v), 2) for k, v in sorted(per.items())},
                               indent=1) + "\n", encoding="utf-8")
    return path


def _split(files: list[Path], jobs: int,
           durations: dict[str, float] | None = None) -> list[list[str]]:
    """The tests of ``files`` dealt out to ``jobs`` pytest processes one test function at a time,
    so that a lab whose tests sit in one file still runs them side by side. With ``durations``
    (seconds per test name) the longest test goes first to the process with the least work so
    far, so that no process is left with two long tests while another idles; a test the file
    does not know counts as the median of those it does. Each process runs its tests in the
    files' order."""
    nodes = _nodes(files)
    if not durations:
        return [g for g in (nodes[i::jobs] for i in range(jobs)) if g]
    import statistics
    default = statistics.median(durations.values())

    def cost(node: str) -> float:
        return durations.get(node.split("::")[-1], default)

    loads, groups = [0.0] * jobs, [[] for _ in range(jobs)]
    for node in sorted(nodes, key=cost, reverse=True):   # a stable sort: ties keep file order
        i = loads.index(min(loads))
        groups[i].append(node)
        loads[i] += cost(node)
    order = {n: i for i, n in enumerate(nodes)}
    return [sorted(g, key=order.__getitem__) for g in groups if g]


def _merge(base: list[dict], again: list[dict]) -> list[dict]:
    redo = {t["nodeid"]: t for t in again}
    return [redo.get(t["nodeid"], t) for t in base]


def grade_submission(lab: LabInfo, submission: str | Path, seed: int = 1,
                     out_dir: str | Path | None = None, jobs: int = 1,
                     include_public: bool = False, retries: int = 1,
                     select: str | None = None, stop_first: bool = False,
                     marks: str | None = None, zygotes: Path | None = None) -> GradingResult:
    """Grade one submission (.py or .ipynb) of ``lab``; artifacts go to ``out_dir``.

    jobs > 1 runs the lab's tests in that many pytest processes at once (dealt out one test
    function at a time, reported in the files' order); ``select`` is a pytest ``-k``
    expression that keeps only some tests (a variant that teaches one of them);
    ``stop_first`` stops at the first test that does not pass (enough to know a mutant is
    caught); ``marks`` is a pytest ``-m`` expression (``"explore"``: the exploring tests);
    ``zygotes`` is a folder only the grader enters where the fork servers of the gradings that
    name it are shared (a batch passes one; by default each grading has its own)."""
    t0 = time.monotonic()
    submission = Path(submission).resolve()
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix=f"splitbrain-{lab.slug}-"))
    out.mkdir(parents=True, exist_ok=True)
    artifacts = out / "artifacts"
    with tempfile.TemporaryDirectory(prefix="splitbrain-run-") as tmp, _hidden(lab), \
            contextlib.ExitStack() as stack:
        rundir = Path(tmp)
        if zygotes is None:
            zygotes = stack.enter_context(zygote_folder())
        files = _private_tests(lab, include_public, rundir / "tests")
        if not files:
            return GradingResult(lab.slug, str(submission), seed, error=f"{lab.slug} has no tests "
                                 f"in {lab.autograder_dir}", duration_s=time.monotonic() - t0)
        limit = 60 + lab.test_timeout_s * 1.5 * 50
        groups = ([[str(f) for f in files]] if jobs <= 1
                  else _split(files, jobs, expected_durations(lab)))

        def run(i_group: tuple[int, list[str]], attempt: str = "") -> tuple[dict | None, str]:
            i, group = i_group
            return _run_pytest(lab, rundir / "tests", group, submission, seed,
                               rundir / f"results-{i}{attempt}.json", artifacts, limit, select,
                               stop_first, marks, zygotes)

        with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
            outs = list(pool.map(run, enumerate(groups)))
        tests: list[dict] = []
        for data, log in outs:
            if data is not None and (select or marks) and not data.get("tests"):
                continue  # this group's files hold none of the selected tests
            if data is None or (not data.get("tests") and data.get("collected", 0) == 0):
                return GradingResult(lab.slug, str(submission), seed, duration_s=time.monotonic()
                                     - t0, error="the grader could not run the tests:\n"
                                     + "\n".join(log.strip().splitlines()[-15:]))
            tests += data["tests"]
        if len(groups) > 1:   # back in the order of the files, as one process would report them
            place = {Path(n).name: i for i, n in enumerate(_nodes(files))}
            tests.sort(key=lambda t: (place.get(Path(t["nodeid"].split("[")[0]).name,
                                                place.get(Path(t["nodeid"].split("::")[0]).name,
                                                          len(place)))))
        for attempt in range(retries):
            infra = [t["nodeid"] for t in tests if t["status"] == "infra_error"]
            if not infra:
                break
            data, _ = _run_pytest(lab, rundir / "tests", infra, submission, seed,
                                  rundir / f"results-retry{attempt}.json", artifacts, limit,
                                  zygotes=zygotes)
            if data:
                tests = _merge(tests, data["tests"])
    for t in tests:  # nodeids of the private copy mean nothing to a reader
        t["name"] = t["nodeid"].split("::")[-1]
    return GradingResult(lab.slug, str(submission), seed,
                         tuple(TestResult.from_plugin(t) for t in tests),
                         duration_s=time.monotonic() - t0)


def grade_repeated(lab: LabInfo, submission: str | Path, seed: int = 1, repeat: int = 1,
                   out_dir: str | Path | None = None, **kw) -> GradingResult:
    """Grade ``repeat`` times with the same seed; the lowest score counts and ``consistent`` says
    whether every run gave the same verdict per test."""
    runs = [grade_submission(lab, submission, seed, Path(out_dir) / f"run-{i}" if out_dir and
                             repeat > 1 else out_dir, **kw) for i in range(max(1, repeat))]
    verdicts = {tuple((t.name, t.status) for t in r.tests) for r in runs}
    worst = min(runs, key=lambda r: (r.score, r.error is None))
    return GradingResult(worst.lab, worst.submission, seed, worst.tests, worst.error,
                         sum(r.duration_s for r in runs), len(runs), len(verdicts) == 1,
                         scores=tuple(r.score for r in runs))


def submission_key(path: Path, common: Path | None) -> str:
    rel = path.relative_to(common) if common and path.is_relative_to(common) else Path(path.name)
    key = "-".join(rel.with_suffix("").parts)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:100] or "submission"


def fingerprint(path: Path, seed: int, repeat: int) -> str:
    h = hashlib.sha256(path.read_bytes() if path.is_file() else b"")
    h.update(f"{seed}/{repeat}".encode())
    return h.hexdigest()


def batch_keys(submissions: list[Path]) -> list[str]:
    """A folder name per submission, unique in the batch (``alice-counter`` for
    ``alice/counter.py``): the same for the same list, on any machine."""
    subs = [Path(s).resolve() for s in submissions]
    common = Path(os.path.commonpath([str(s.parent) for s in subs])) if len(subs) > 1 else None
    keys: list[str] = []
    for s in subs:
        k = submission_key(s, common)
        while k in keys:
            k += "_"
        keys.append(k)
    return keys


def grade_batch(lab: LabInfo, submissions: list[Path], out_dir: str | Path, seed: int = 1,
                jobs: int = 2, repeat: int = 1, on_done=None,
                keys: list[str] | None = None) -> list[GradingResult]:
    """Grade many submissions, ``jobs`` at a time; each result is written atomically to
    ``out_dir/<key>/result.json`` and reused on the next run when the submission is unchanged
    (a batch that stopped resumes where it was). One submission's failure never stops the batch.
    ``keys`` names each submission's folder (default :func:`batch_keys`; a shard passes the keys
    of the whole batch so that every machine names a submission alike)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    subs = [Path(s).resolve() for s in submissions]
    keys = list(keys) if keys is not None else batch_keys(subs)

    def one(i: int) -> GradingResult:
        sub, key = subs[i], keys[i]
        folder = out_dir / key
        done = folder / "result.json"
        fp = fingerprint(sub, seed, repeat)
        if done.is_file():
            try:
                data = json.loads(done.read_text())
                if data.get("fingerprint") == fp and not data.get("infra_errors"):
                    r = GradingResult.from_dict(data)
                    if on_done:
                        on_done(r, True)
                    return r
            except (ValueError, TypeError, KeyError):
                pass
        try:
            r = grade_repeated(lab, sub, seed, repeat, folder, jobs=1, zygotes=zygotes)
        except Exception as e:  # noqa: BLE001 - the batch goes on
            r = GradingResult(lab.slug, str(sub), seed, error=f"the grader failed: {e!r}")
        r = dataclasses.replace(r, extra={"key": key})
        write_atomic(done, json.dumps({**r.to_dict(), "fingerprint": fp, "key": key}, indent=1))
        if on_done:
            on_done(r, False)
        return r

    # one set of fork servers for the whole batch: each starts once, not once per submission
    with zygote_folder() as zygotes, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, range(len(subs))))


def write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
