"""``splitbrain check``: the learner's loop. Grade the component with the hidden and public tests,
explain what broke, record the attempt and show the hint that fits what failed (`splitbrain hint`
shows the next one about it); ``--watch`` grades again on every save, ``--explore N`` tries N more
random fault schedules after full marks. On a terminal it draws a table and a spinner; in a
notebook or a log, plain lines, one per step."""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from splitbrain.cli._run import console, interruptible, services_problem, working
from splitbrain.lab import LabError, find_lab


def _not_graded(result) -> str | None:
    """Why a grading says nothing about the code (it could not run, or every test hit a service
    failure), or None when it is a real verdict."""
    if result.error:
        return result.error
    if result.tests and all(t.status == "infra_error" for t in result.tests):
        seen: list[str] = []
        for t in result.tests:
            line = (t.message or "a service failed").removeprefix("infrastructure: ").strip()
            if line not in seen:
                seen.append(line)
        return "\n".join(seen)
    return None


def _check_once(lab, submission: Path, args) -> int:
    from splitbrain import paths
    from splitbrain.grading import reports
    from splitbrain.grading.handout import (failures_of, forget_failure, hint_for_failures,
                                            load_progress_for, record_attempt)
    from splitbrain.grading.runner import CHECK_JOBS, grade_submission
    out = paths.state_dir() / "check" / lab.slug
    with interruptible() as stopped, working(
            f"grading {submission.name} for {lab.slug} under faults (seed {args.seed}; a minute "
            f"or so)..."):
        result = grade_submission(lab, submission, args.seed, out, include_public=True,
                                  jobs=CHECK_JOBS)
    if stopped.is_set():
        print("stopped: this attempt does not count.", file=sys.stderr)
        raise KeyboardInterrupt
    why = _not_graded(result)
    if why is not None:  # not the learner's attempt: no progress recorded, no hint spent
        message = (f"{lab.slug} could not be graded, so this attempt does not count:\n{why}\n"
                   f"Check the services with `splitbrain status` (or start them with `splitbrain "
                   f"up`), then run `splitbrain check {lab.slug}` again.")
        print(f"error: {message}", file=sys.stderr)
        if args.json:
            print(json.dumps({**result.to_dict(), "graded": False, "error": message,
                              "progress": load_progress_for(lab.slug), "hint": None}, indent=1))
        return 3
    full = result.full_marks
    note = _release_note(lab, result)
    record_attempt(lab.slug, result.score, result.max_score, full and note is None)
    failures = [] if full else failures_of(result, lab.component)
    hint = hint_for_failures(lab, failures) if failures else None
    if full:
        forget_failure(lab)
    if args.json:
        print(json.dumps({**result.to_dict(), "graded": True,
                          **({"edition": "learner", "grade_note": note} if note else {}),
                          "progress": load_progress_for(lab.slug),
                          "hint": hint[1] if hint else None,
                          "hint_number": hint[0] if hint else None}, indent=1))
        return 0 if full else 1
    con = console()
    reports.summary(result, con)
    if full and getattr(args, "explore", 0):
        return _explore(lab, submission, args)
    if note:
        print(f"\n{note}")
    if full:
        if not note:
            print(f"\n{lab.slug} passes every test. On to the next lab: splitbrain labs")
        return 0
    crash = _crash_line(failures, len(result.tests), submission.name)
    if crash:
        print(f"\n{crash}")
    if hint:
        _print_hint(lab, failures, hint)
    if not args.watch:
        print(f"\nnext: fix {_shown(submission)} and run `splitbrain check {lab.slug}` again "
              f"(add --watch to re-check on every save).")
    return 1


def _release_note(lab, result) -> str | None:
    """In a class's release (no hidden tests here): what this check ran and where the grade
    comes from; None in the full edition, where check runs the hidden tests."""
    from splitbrain.release import info
    if info(lab.root) is None:
        return None
    passed = sum(t.status == "passed" for t in result.tests)
    return (f"{lab.slug}: {passed} of {len(result.tests)} public tests pass under the lab's "
            f"faults. This is your class's edition: your grade comes from your instructor's "
            f"hidden tests, which are not in it. Passing the public tests is necessary, not "
            f"sufficient: the hidden tests add more faults and check every guarantee of the "
            f"chapter.")


def _crash_line(failures, total: int, name: str) -> str | None:
    """When the component raised in some tests: the exception, where, and in how many tests;
    that comes before any design question."""
    raised = [f for f in failures if f.raised]
    if not raised:
        return None
    counts: dict[tuple[str, str], int] = {}
    for f in raised:
        where = f.functions[-1] if f.functions else ""
        counts[(f.raised, where)] = counts.get((f.raised, where), 0) + 1
    (kind, where), n = max(counts.items(), key=lambda kv: kv[1])
    place = f" in {where}()" if where else ""
    return (f"first: your {name} raised {kind}{place} in {n} of {total} tests (the "
            f"traceback is above); fix that before anything else.")


def _print_hint(lab, failures, hint) -> None:
    from splitbrain.grading.handout import best_fits, more_about_failure
    number, text = hint
    fits = best_fits(lab.hints, failures, dict(getattr(lab, "hint_for", None) or {})).get(number)
    about = ""
    if fits:
        about = f" (for {', '.join(fits[:2])}" + (f" and {len(fits) - 2} more" if len(fits) > 2
                                                  else "") + ")"
    print(f"\nhint {number}/{len(lab.hints)}{about}: {text}")
    if more_about_failure(lab):
        print(f"another hint about this failure: `splitbrain hint {lab.slug}`")


def _explore(lab, submission: Path, args) -> int:
    """``check --explore N``: the exploring tests under N more seeds, stopping at the first that
    fails. More assurance for the learner; it changes no grade and spends no hint."""
    from splitbrain import paths
    from splitbrain.grading import reports
    from splitbrain.grading.runner import grade_submission
    out = paths.state_dir() / "check" / lab.slug / "explore"
    for i in range(1, args.explore + 1):
        seed = args.seed + i
        with interruptible() as stopped, working(
                f"exploring: seed {seed} ({i} of {args.explore})..."):
            r = grade_submission(lab, submission, seed, out / f"seed-{seed}", marks="explore",
                                 stop_first=True)
        if stopped.is_set():
            print(f"stopped after {i - 1} seed(s), none of which broke a guarantee.",
                  file=sys.stderr)
            raise KeyboardInterrupt
        if r.error or not r.tests:
            print(f"error: {lab.slug} has no exploring test to run"
                  + (f": {r.error}" if r.error else ""), file=sys.stderr)
            return 2
        if not r.full_marks:
            reports.summary(r, console())
            print(f"\nseed {seed} broke a guarantee the fixed tests did not: replay it with "
                  f"`splitbrain check {lab.slug} --seed {seed}`.")
            return 1
    print(f"\n{lab.slug} passes every test and {args.explore} more random fault schedules "
          f"(seeds {args.seed + 1}-{args.seed + args.explore}).")
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_error(args, message: str, code: int = 2) -> int:
    """An error of `check`: on stderr, and with --json also as JSON on stdout."""
    print(f"error: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"graded": False, "error": message}, indent=1))
    return code


def cmd_check(args) -> int:
    from splitbrain.grading.submissions import SubmissionError, component_file
    try:
        lab = find_lab(args.lab)
    except LabError as e:
        return _check_error(args, str(e))
    if args.submission:
        submission = Path(args.submission).expanduser().resolve()
        if not submission.is_file():
            what = "is a folder" if submission.is_dir() else "does not exist"
            return _check_error(args, f"--submission {args.submission} {what} (looked for "
                                      f"{submission}). Pass a copy of your component "
                                      f"({lab.component}), or a notebook whose component cells "
                                      f"are tagged `component`; a relative path starts at the "
                                      f"current folder.")
    else:
        submission = lab.component_path
        if not submission.is_file():
            return _check_error(args, f"{submission} is missing. `splitbrain reset {lab.slug}` "
                                      f"puts the handout back.")
    try:  # a submission that cannot be graded is the learner's to fix: say so before grading
        with tempfile.TemporaryDirectory(prefix="splitbrain-check-") as tmp:
            component_file(submission, lab, Path(tmp))
    except SubmissionError as e:
        code = _check_error(args, str(e))
        if not args.watch:
            return code
    else:
        problem = services_problem([lab])
        if problem:
            return _check_error(args, problem, 3)
        code = _check_once(lab, submission, args)
    if not args.watch:
        return code
    print(f"\nwatching {_shown(submission)}: save it to grade again (Ctrl-C to stop)",
          file=sys.stderr)
    last = submission.stat().st_mtime
    try:
        while True:
            time.sleep(0.5)
            try:
                now = submission.stat().st_mtime
            except FileNotFoundError:
                continue
            if now != last:
                last = now
                print(f"\n--- {submission.name} changed: grading again ---", file=sys.stderr)
                try:
                    with tempfile.TemporaryDirectory(prefix="splitbrain-check-") as tmp:
                        component_file(submission, lab, Path(tmp))
                except SubmissionError as e:
                    print(f"error: {e}", file=sys.stderr)
                    code = 2
                    continue
                code = _check_once(lab, submission, args)
    except KeyboardInterrupt:
        print("\nstopped watching", file=sys.stderr)
        return code
