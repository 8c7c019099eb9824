"""``splitbrain labs | check | hint | reset | grade | verify``: the learner's loop and the
instructor's grading."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from splitbrain.lab import LabError, discover_labs, find_lab


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labs", help="list the labs and your progress")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_labs)

    p = sub.add_parser("check", help="grade your component of a lab and show the next hint")
    p.add_argument("lab", help="lab slug or number, e.g. 01-fencing-locks or 1")
    p.add_argument("--submission", help="file to grade instead of labs/LAB/<component> "
                                        "(relative to the current folder; .py or .ipynb)")
    p.add_argument("--watch", action="store_true", help="grade again every time the file changes")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault schedules (default 1)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("hint", help="show the next hint of a lab")
    p.add_argument("lab")
    p.set_defaults(func=cmd_hint)

    p = sub.add_parser("reset", help="restore a lab's component to the handout (your version is "
                                     "backed up first)")
    p.add_argument("lab")
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser("grade", help="grade submissions (files, notebooks or folders) of a lab")
    p.add_argument("lab")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    p.add_argument("--out", default="grades", help="output folder (default ./grades); a batch "
                                                   "that stopped resumes from it")
    p.add_argument("--format", default="json,junit,gradescope,csv",
                   help="comma-separated: json, junit, gradescope, csv")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1,
                   help="grade each submission N times; the lowest score counts, disagreement "
                        "is reported")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("verify", help="prove each lab: broken fails for the taught reason, "
                                      "solution gets full marks")
    p.add_argument("labs", nargs="*", metavar="LAB")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="gradings run at once (default 2)")
    p.set_defaults(func=cmd_verify)


def _lab(name: str):
    try:
        return find_lab(name)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_labs(args) -> int:
    from splitbrain.grading.handout import load_progress
    try:
        labs = discover_labs()
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress = load_progress()
    rows = [{"lab": l.slug, "title": l.title, "chapter": l.chapter,
             "progress": progress.get(l.slug, {"attempts": 0, "done": False})} for l in labs]
    if args.json:
        print(json.dumps({"labs": rows}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title="Split Brain labs")
    for c in ("lab", "title", "chapter", "progress"):
        t.add_column(c)
    for r in rows:
        p = r["progress"]
        state = ("done" if p.get("done") else
                 f"{p.get('best', 0):g}/{p.get('max', 0):g} after {p['attempts']} attempt(s)"
                 if p.get("attempts") else "not started")
        t.add_row(r["lab"], r["title"], r["chapter"], state)
    Console().print(t)
    return 0


def _check_once(lab, submission: Path, args) -> int:
    from splitbrain import paths
    from splitbrain.grading import reports
    from splitbrain.grading.handout import next_hint, record_attempt
    from splitbrain.grading.runner import grade_submission
    out = paths.state_dir() / "check" / lab.slug
    result = grade_submission(lab, submission, args.seed, out, include_public=True)
    full = result.full_marks
    progress = record_attempt(lab.slug, result.score, result.max_score, full)
    hint = None if full or result.error else next_hint(lab)
    if args.json:
        print(json.dumps({**result.to_dict(), "progress": progress,
                          "hint": hint[1] if hint else None}, indent=1))
    else:
        reports.summary(result)
        if full:
            print(f"\n{lab.slug} passes every test. On to the next lab: splitbrain labs")
        elif hint:
            print(f"\nhint {hint[0]}/{len(lab.hints)}: {hint[1]}")
    return 0 if full else 1


def cmd_check(args) -> int:
    lab = _lab(args.lab)
    submission = Path(args.submission).resolve() if args.submission else lab.component_path
    if not submission.exists():
        print(f"error: {submission} does not exist", file=sys.stderr)
        return 2
    code = _check_once(lab, submission, args)
    if not args.watch:
        return code
    print(f"\nwatching {submission} (Ctrl-C to stop)")
    last = submission.stat().st_mtime
    while True:
        time.sleep(0.5)
        try:
            now = submission.stat().st_mtime
        except FileNotFoundError:
            continue
        if now != last:
            last = now
            print(f"\n--- {submission.name} changed: grading again ---")
            _check_once(lab, submission, args)


def cmd_hint(args) -> int:
    from splitbrain.grading.handout import next_hint
    lab = _lab(args.lab)
    hint = next_hint(lab)
    if hint is None:
        print(f"{lab.slug} has no hints.")
        return 0
    print(f"hint {hint[0]}/{len(lab.hints)}: {hint[1]}")
    return 0


def cmd_reset(args) -> int:
    from splitbrain.grading.handout import reset
    lab = _lab(args.lab)
    try:
        restored, backup = reset(lab)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if backup:
        print(f"your version is saved as {backup}")
    print(f"{restored} is the handout again")
    return 0


def cmd_grade(args) -> int:
    from rich.progress import Progress
    from splitbrain.grading import reports
    from splitbrain.grading.runner import grade_batch
    from splitbrain.grading.submissions import SubmissionError, expand
    lab = _lab(args.lab)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in reports.FORMATS]
    if bad:
        print(f"error: unknown format(s) {', '.join(bad)}; choose from "
              f"{', '.join(reports.FORMATS)}", file=sys.stderr)
        return 2
    try:
        subs = expand(args.submissions)
    except SubmissionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with Progress(transient=False) as progress:
        task = progress.add_task(f"grading {lab.slug}", total=len(subs))

        def done(result, reused: bool) -> None:
            progress.advance(task)
            note = " (kept from the last run)" if reused else ""
            progress.console.print(f"{Path(result.submission).name}: {result.score:g}/"
                                   f"{result.max_score:g}{note}" if not result.error else
                                   f"{Path(result.submission).name}: could not grade: "
                                   f"{result.error.splitlines()[0]}", markup=False)
        results = grade_batch(lab, subs, args.out, args.seed, max(1, args.jobs), args.repeat, done)
    for path in reports.write_reports(results, args.out, formats):
        print(f"wrote {path}")
    if len(results) == 1:
        reports.summary(results[0])
    return 0


def cmd_verify(args) -> int:
    from splitbrain.grading.verify import verify_labs
    try:
        labs = [find_lab(n) for n in args.labs] if args.labs else discover_labs()
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not labs:
        print("error: no labs found under labs/", file=sys.stderr)
        return 2
    proofs = verify_labs(labs, args.seed, max(1, args.repeat), parallel=max(1, args.jobs))
    if args.json:
        print(json.dumps({"labs": [p.to_dict() for p in proofs]}, indent=1))
    else:
        for p in proofs:
            mark = "proves itself" if p.proves else "DOES NOT prove itself"
            print(f"{p.lab}: {mark} (broken {p.broken.score:g}/{p.broken.max_score:g}, anomalies "
                  f"{', '.join(p.broken.anomalies()) or 'none'}; solution "
                  f"{p.solution.score:g}/{p.solution.max_score:g})")
            for problem in p.problems:
                print(f"  - {problem}")
    return 0 if all(p.proves for p in proofs) else 1
