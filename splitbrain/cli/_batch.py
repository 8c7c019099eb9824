"""``splitbrain grade`` and ``splitbrain verify``: the instructor's batch work, with progress, a
summary that says what to do next, and a clean stop on Ctrl-C."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from splitbrain.cli._run import cpu_load, interruptible, services_problem
from splitbrain.cli.grading_cmds import _lab
from splitbrain.lab import LabError, discover_labs, find_lab


def _line(result, reused: bool) -> str:
    name = result.extra.get("key") or Path(result.submission).name  # alice-counter for alice/counter.py
    if result.error:
        return f"{name}: could not grade: {result.error.strip().splitlines()[0]}"
    note = " (kept from the last run)" if reused else ""
    line = f"{name}: {result.score:g}/{result.max_score:g}{note}"
    why = _did_not_run(result)
    if why:
        line += f" - {why.removeprefix(result.submission + ': ')}"
    if result.infra_errors:
        line += f" ({result.infra_errors} test(s) not graded: services failed; run again)"
    if result.runs > 1 and result.scores:
        spread = max(result.scores) - min(result.scores)
        line += (f" (scores over {result.runs} runs: {', '.join(f'{x:g}' for x in result.scores)}"
                 + (f"; spread {spread:g}, the runs disagreed)" if not result.consistent
                    else ")"))
    return line


def _did_not_run(result) -> str | None:
    """The one reason every test gave when the submission could not run at all (syntax error,
    missing name, not a notebook), else None."""
    errors = {t.message.strip().splitlines()[0] for t in result.tests
              if t.status == "error" and t.message.strip()}
    if result.tests and len(errors) == 1 and all(t.status == "error" for t in result.tests):
        return errors.pop()
    return None


def _read(args: list[str], lab, unpack_dir: Path):
    """The batch as handed in (folders, archives, one folder per learner): each learner's
    component once, and a note on stderr for what was left out."""
    from splitbrain.grading.submissions import read_batch
    shutil.rmtree(unpack_dir, ignore_errors=True)   # unpacked afresh, as the archives are now
    subs, notes = read_batch(args, lab, unpack_dir)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return subs


def _not_graded(lab, sub, key: str, seed: int, out_dir: Path):
    """The result of a learner whose files cannot be graded, saved like a graded one."""
    from splitbrain.grading.results import GradingResult
    from splitbrain.grading.runner import write_atomic
    r = GradingResult(lab.slug, str(sub.name.parent), seed, error=sub.problem)
    r = dataclasses.replace(r, extra={"key": key})
    write_atomic(out_dir / key / "result.json", json.dumps(
        {**r.to_dict(), "fingerprint": _fingerprint(sub, seed, 1), "key": key}, indent=1))
    return r


def _fingerprint(sub, seed: int, repeat: int) -> str:
    from splitbrain.grading.runner import fingerprint
    if sub.path is not None:
        return fingerprint(sub.path, seed, repeat)
    return "not-graded:" + hashlib.sha256(f"{sub.problem}\0{sub.digest}".encode()).hexdigest()


UNPACKED = ".unpacked"   # where a batch's archives are unpacked, inside its --out folder


def _other_lab(out_dir: Path, slug: str) -> str | None:
    """The lab whose results already fill ``out_dir``, when it is not ``slug``."""
    for done in sorted(out_dir.glob("*/result.json")) if out_dir.is_dir() else ():
        try:
            lab = json.loads(done.read_text()).get("lab")
        except (OSError, ValueError, AttributeError):
            continue
        if lab and lab != slug:
            return lab
    return None


def _positive(name: str, value: int) -> None:
    if value < 1:
        print(f"error: {name} must be 1 or more, got {value}", file=sys.stderr)
        raise SystemExit(2)


def _formats(args) -> list[str]:
    from splitbrain.grading import reports
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in reports.FORMATS]
    if bad or not formats:
        what = f"unknown format(s) {', '.join(bad)}" if bad else "--format names no report"
        print(f"error: {what}; choose from {', '.join(reports.FORMATS)}, e.g. --format json,csv",
              file=sys.stderr)
        raise SystemExit(2)
    return formats


def _merge(args) -> int:
    """``grade --merge OUT SHARD...``: the reports of a batch graded in shards."""
    from splitbrain.grading import reports
    from splitbrain.grading.shards import ShardError, merge
    if args.lab or args.submissions or args.shard:
        print("error: --merge takes only the output folder and the shard folders: `splitbrain "
              "grade --merge OUT SHARD1 SHARD2 ...`", file=sys.stderr)
        return 2
    formats = _formats(args)
    out, *folders = (Path(p) for p in args.merge)
    try:
        slug, results = merge(out, folders)
    except ShardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in reports.write_reports(results, out, formats):
        if path.parent.parent.name != "gradescope":
            print(f"wrote {path}")
    full = sum(r.full_marks for r in results)
    print(f"\n{len(results)} submission(s) of {slug} from {len(folders)} shard(s): {full} full "
          f"marks. Gradebook and reports: {out}/", file=sys.stderr)
    return 0


def cmd_grade(args) -> int:
    import signal
    import threading
    from rich.progress import Progress
    from splitbrain.grading import reports
    from splitbrain.grading.runner import batch_keys, grade_batch
    from splitbrain.grading.submissions import SubmissionError
    if args.merge:
        return _merge(args)
    if not args.lab or not args.submissions:
        print("error: name the lab and the submissions: `splitbrain grade LAB SUBMISSION...` "
              "(or merge shards: `splitbrain grade --merge OUT SHARD...`)", file=sys.stderr)
        return 2
    lab = _lab(args.lab)
    if args.jobs is None:
        from splitbrain.grading.runner import BATCH_JOBS
        args.jobs = BATCH_JOBS
    _positive("--jobs", args.jobs)
    _positive("--repeat", args.repeat)
    formats = _formats(args)
    shard = None
    if args.shard:
        from splitbrain.grading.shards import ShardError, parse_shard
        try:
            shard = parse_shard(args.shard)
        except ShardError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    out_dir = Path(args.out) if args.out else Path("grades") / lab.slug
    if out_dir.exists() and not out_dir.is_dir():
        print(f"error: --out {out_dir} is a file; give a folder for the results",
              file=sys.stderr)
        return 2
    other = _other_lab(out_dir, lab.slug)
    if other:
        print(f"error: {out_dir}/ holds grades of {other}; a batch resumes from its folder, so "
              f"give {lab.slug} its own, e.g. --out grades/{lab.slug}", file=sys.stderr)
        return 2
    try:
        entries = _read(args.submissions, lab, out_dir / UNPACKED)
    except SubmissionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = batch_keys([e.name for e in entries])
    if shard is not None:
        from splitbrain.grading.shards import Manifest, slice_of
        i, n = shard
        mine = slice_of(keys, i, n)
        shard = Manifest(lab.slug, args.seed, args.repeat, i, n, tuple(keys),
                         tuple(keys[j] for j in mine),
                         {k: _fingerprint(e, args.seed, args.repeat)
                          for k, e in zip(keys, entries)},
                         tuple(str(a) for a in args.submissions))
        if not mine:
            print(f"note: shard {i}/{n} holds no submission (the batch has {len(keys)}); its "
                  f"folder is still needed by --merge", file=sys.stderr)
        entries, keys = [entries[j] for j in mine], [keys[j] for j in mine]
    graded = [j for j, e in enumerate(entries) if e.path is not None]
    subs = [entries[j].path for j in graded]
    problem = services_problem([lab]) if subs else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 3
    results_seen: list = []
    stopping = threading.Event()

    def on_sigint(signum, frame):
        if stopping.is_set():
            print("still finishing the gradings in progress...", file=sys.stderr)
            return
        stopping.set()
        print("\nstopping: the gradings in progress finish and are saved, the rest wait for the "
              "next run...", file=sys.stderr)
        raise KeyboardInterrupt
    previous = (signal.signal(signal.SIGINT, on_sigint)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        with Progress(transient=False, console=None) as progress:
            task = progress.add_task(f"grading {lab.slug}", total=len(entries))

            def done(result, reused: bool) -> None:
                results_seen.append(result)
                progress.advance(task)
                progress.console.print(_line(result, reused), markup=False, highlight=False,
                                       soft_wrap=True)
            if shard is not None:
                from splitbrain.grading.shards import write_manifest
                out_dir.mkdir(parents=True, exist_ok=True)
                write_manifest(out_dir, shard)
            results: list = [None] * len(entries)
            for j, e in enumerate(entries):
                if e.path is None:
                    results[j] = _not_graded(lab, e, keys[j], args.seed, out_dir)
                    done(results[j], False)
            for j, r in zip(graded, grade_batch(lab, subs, out_dir, args.seed, args.jobs,
                                                args.repeat, done, keys=[keys[j] for j in graded])):
                results[j] = r
    except KeyboardInterrupt:
        left = len(entries) - len(results_seen)
        print(f"stopped: {len(results_seen)} of {len(entries)} submissions graded and saved in "
              f"{out_dir}/. Run the same command again to grade the other {left} and write the "
              f"reports.", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    written = reports.write_reports(results, out_dir, formats)
    per_sub = [p for p in written if p.parent.parent.name == "gradescope"]
    for path in written:
        if path not in per_sub:
            print(f"wrote {path}")
    if per_sub:
        print(f"wrote {out_dir / 'gradescope'}/<submission>/results.json ({len(per_sub)} files)")
    if len(results) == 1:
        reports.summary(results[0])
    infra = [r for r in results if r.infra_errors and not r.error]
    full = sum(r.full_marks for r in results)
    failed = sum(bool(r.error) for r in results)
    norun = sum(not r.error and r not in infra and _did_not_run(r) is not None for r in results)
    lost = len(results) - full - failed - norun - len(infra)
    print(f"\n{len(results)} submission(s) of {lab.slug}: {full} full marks, {lost} lost points, "
          f"{norun} did not run (the reason is on their line; they score 0), {failed} could not "
          f"be graded, {len(infra)} not fully graded (services failed). Gradebook and reports: "
          f"{out_dir}/", file=sys.stderr)
    if infra:
        print(f"{len(infra)} submission(s) have tests not graded because a service failed; "
              f"`splitbrain status` shows the services. Run the same command again to grade "
              f"only those (exit 3).", file=sys.stderr)
        return 3
    return 0


def _print_proof(p) -> None:
    if not p.complete:
        print(f"{p.lab}: not complete ({len(p.missing)} item(s) left to write)")
        for item in p.missing:
            print(f"  {item.line()}")
        return
    mark = "proves itself" if p.proves else "DOES NOT prove itself"
    print(f"{p.lab}: {mark} (broken {p.broken.score:g}/{p.broken.max_score:g}, anomalies "
          f"{', '.join(p.broken.anomalies()) or 'none'}; solution "
          f"{p.solution.score:g}/{p.solution.max_score:g})")
    for o in p.variants:
        print(f"  variant {o.variant.name}: {'as expected' if o.ok else 'NOT as expected'} "
              f"({o.result.score:g}/{o.result.max_score:g}"
              f"{', a different correct design' if o.variant.correct else ''})")
    for problem in p.problems:
        print(f"  - {problem}")


def cmd_verify(args) -> int:
    from concurrent.futures import ThreadPoolExecutor, as_completed
    from rich.console import Console
    from splitbrain.grading.verify import verify_lab
    try:
        labs = [find_lab(n) for n in args.labs] if args.labs else discover_labs()
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not labs:
        print("error: no labs found under labs/ (run the command inside the Split Brain "
              "checkout, or set SPLITBRAIN_ROOT to it)", file=sys.stderr)
        return 2
    _positive("--jobs", args.jobs)
    _positive("--repeat", args.repeat)
    from splitbrain.grading.labcheck import missing
    complete = [lab for lab in labs if not missing(lab)]   # only those are graded
    problem = services_problem(complete) if complete else None
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 3
    err = Console(stderr=True, highlight=False)
    if not args.worktree:
        from splitbrain.grading.handout import differs_from_head
        for lab in labs:
            if differs_from_head(lab):
                err.print(f"note: {lab.component_path.relative_to(lab.root)} differs from the "
                          f"committed handout; verify grades the committed one (--worktree "
                          f"grades the file as it is)", markup=False)
    load = f", {args.load} busy process(es) beside them" if args.load else ""
    err.print(f"proving {len(labs)} lab(s): each grades its broken handout and its solution "
              f"under faults ({args.jobs} grading(s) at once{load}; from seconds to minutes "
              f"per lab)", markup=False)
    t0 = time.monotonic()
    by_slug = {}
    futures: list = []
    if args.load < 0:
        print(f"error: --load is a number of busy processes (0 or more), got {args.load}",
              file=sys.stderr)
        return 2
    with interruptible(lambda: [f.cancel() for f in futures]) as stopped, \
            cpu_load(args.load), \
            ThreadPoolExecutor(max_workers=max(1, (args.jobs + 1) // 2)) as pool:
        futures += [pool.submit(verify_lab, lab, args.seed, args.repeat,
                                concurrent=args.jobs > 1, worktree=args.worktree,
                                variants=args.variants)
                    for lab in labs]
        with err.status("verifying...") as live:
            for fut in as_completed(futures):
                if stopped.is_set():
                    break
                p = fut.result()
                by_slug[p.lab] = p
                live.update(f"verifying... {len(by_slug)}/{len(labs)} done")
                if len(labs) > 1:
                    verdict = "proves itself" if p.proves else "DOES NOT prove itself"
                    err.print(f"{p.lab}: {verdict} ({time.monotonic() - t0:.0f} s)",
                              markup=False)
    if stopped.is_set():
        err.print("stopped: no verdict.", markup=False)
        return 130
    proofs = [by_slug[lab.slug] for lab in labs]
    if args.json and not args.mutants:
        print(json.dumps({"labs": [p.to_dict() for p in proofs]}, indent=1))
    elif args.json:
        args.proofs = proofs   # printed with the mutants, as one JSON document
    else:
        for p in proofs:
            _print_proof(p)
    incomplete = [p.lab for p in proofs if not p.complete]
    bad = [p.lab for p in proofs if not p.proves]
    if incomplete:
        err.print(f"{len(incomplete)} lab(s) are not complete yet: {', '.join(incomplete)}. Each "
                  f"unchecked item above says what to write; verify grades a lab once it is "
                  f"complete.", markup=False)
    if bad:
        if args.json and args.mutants:
            print(json.dumps({"labs": [p.to_dict() for p in proofs]}, indent=1))
        err.print(f"{len(bad)} of {len(proofs)} lab(s) do not prove themselves: {', '.join(bad)}."
                  f" Each problem above names the test; `splitbrain check LAB --submission "
                  f"solutions/LAB/<component>` shows the solution's grading in full.",
                  markup=False)
        return 1
    err.print(f"all {len(proofs)} lab(s) prove themselves.", markup=False)
    if args.mutants:
        return _mutants(args, labs, err)
    return 0


def _mutants(args, labs, err) -> int:
    """``verify --mutants``: the kill rate of each lab's hidden tests."""
    from splitbrain import paths
    from splitbrain.grading.mutants import TARGET, run_mutants, save
    reports = []
    for lab in labs:
        last = paths.state_dir() / "mutants" / f"{lab.slug}.json"
        only = None
        if args.survivors:
            try:
                data = json.loads(last.read_text())
                only = {o["name"] for o in data["outcomes"] if o["status"] == "survived"}
            except (OSError, ValueError, KeyError):
                err.print(f"error: {lab.slug}: no earlier mutant run to take survivors from. Run "
                          f"`splitbrain verify {lab.slug} --mutants` (or with --sample N) first; "
                          f"--survivors then regrades only what that run left alive.",
                          markup=False)
                return 2
        done = [0]

        def tick(o, lab=lab):
            done[0] += 1
            if o.status != "killed":
                err.print(f"  {lab.slug} {o.name}: {o.status.upper()} ({o.what})", markup=False)

        with err.status(f"{lab.slug}: grading mutants...") as live:
            def on_done(o, tick=tick):
                tick(o)
                live.update(f"{lab.slug}: {done[0]} mutant(s) graded...")
            report = run_mutants(lab, args.seed, max(1, args.jobs), args.sample, only,
                                 on_done=on_done, variants=not args.survivors)
        if only is None:  # a whole or a sampled run: its survivors are what --survivors regrades
            save(report, last)
        reports.append(report)
        if args.json:
            continue
        print(report.summary())
        for o in report.survivors:
            print(f"  survived {o.name}: {o.what}")
        for stale in report.stale:
            print(f"  - mutants.toml names {stale}, which is no longer a mutant of the solution")
    if args.json:
        print(json.dumps({"labs": [p.to_dict() for p in args.proofs],
                          "mutants": [r.to_dict() for r in reports]}, indent=1))
    low = [r.lab for r in reports if not r.meets_target]
    if low:
        err.print(f"below the {TARGET:.0%} kill rate: {', '.join(low)}. Each survivor is a "
                  f"mistake a learner could keep and still get full marks: add a test that "
                  f"catches it, or mark it equivalent (same behaviour under every test) in "
                  f"autograder/LAB/mutants.toml with a reason.", markup=False)
        return 1
    return 0
