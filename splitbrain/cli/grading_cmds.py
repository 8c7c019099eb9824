"""``splitbrain labs | check | hint | reset | grade | verify``: the learner's loop and the
instructor's grading."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from splitbrain.cli._help import parser
from splitbrain.cli._run import interruptible, services_problem, working
from splitbrain.lab import LabError, discover_labs, find_lab


LAB_HELP = "the lab: its number (7 or 07), its folder name (NN-slug) or the slug's words"
SEED_HELP = ("seed of the fault schedules; the same seed replays the same faults at the same "
             "moments (default 1)")


def register(sub: argparse._SubParsersAction) -> None:
    p = parser(sub, "labs", "list the labs and your progress",
               "Every lab under labs/ with its title, chapter and your progress (attempts, best "
               "score, done).",
               [("splitbrain labs", "a table"), ("splitbrain labs --json", "JSON only")])
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=cmd_labs)

    p = parser(sub, "check", "grade your component of a lab and show the next hint",
               "Grade your component (labs/LAB/<component>, or --submission) with the hidden "
               "tests an instructor grades with, plus the lab's public tests, under injected "
               "faults. Prints which guarantee broke, under which fault, the seed to replay it "
               "and the picture of what happened, then the next hint. Exit 0 on full marks, 1 "
               "when a test fails, 2 when the lab or the file cannot be used, 3 when the "
               "services do not answer (that attempt does not count).",
               [("splitbrain check 01", "grade lab 01's component in labs/01-*/"),
                ("splitbrain check 01 --watch", "grade again on every save"),
                ("splitbrain check 01 --submission ~/try2/my_component.py", "grade another copy"),
                ("splitbrain check 01 --seed 7", "another fault schedule")])
    p.add_argument("lab", help=LAB_HELP)
    p.add_argument("--submission", metavar="FILE",
                   help="grade this .py component or .ipynb notebook instead of "
                        "labs/LAB/<component> (a path relative to the current folder)")
    p.add_argument("--watch", action="store_true",
                   help="after grading, grade again every time the file changes (Ctrl-C stops)")
    p.add_argument("--json", action="store_true",
                   help="print only the result as JSON on stdout (score, tests, hint, progress)")
    p.add_argument("--seed", type=int, default=1, help=SEED_HELP)
    p.set_defaults(func=cmd_check)

    p = parser(sub, "hint", "show the next hint of a lab",
               "Show the next hint of a lab; each call reveals one more, the last one repeats. "
               "`splitbrain check` shows them too after a failed attempt.",
               [("splitbrain hint 01", "")])
    p.add_argument("lab", help=LAB_HELP)
    p.set_defaults(func=cmd_hint)

    p = parser(sub, "reset", "restore a lab's component to the handout (your version is backed "
                             "up first)",
               "Put the lab's component back to the broken handout as shipped. Your current "
               "version is copied to .splitbrain/backups/LAB/ first and its path is printed.",
               [("splitbrain reset 01", "restore lab 01's component to the handout")])
    p.add_argument("lab", help=LAB_HELP)
    p.set_defaults(func=cmd_reset)

    p = parser(sub, "grade", "grade submissions (files, notebooks or folders) of a lab",
               "Grade a class: each SUBMISSION is a .py component, a .ipynb notebook, or a "
               "folder of them (or of one folder per learner). Each result is saved in "
               "FOLDER/<submission>/result.json as soon as it is known, so a batch stopped with "
               "Ctrl-C resumes where it was when run again with the same --out; unchanged "
               "submissions are not graded twice. Reports are written to FOLDER at the end. A "
               "submission that cannot be graded is reported as such and does not stop the "
               "batch. Exit 0 when the batch completed, 2 on bad arguments, 3 when the services "
               "do not answer (some tests not graded; run again), 130 when stopped with Ctrl-C.",
               [("splitbrain grade 01 submissions/", "every file in the folder"),
                ("splitbrain grade 01 alice.py bob.ipynb --out grades/", "two submissions"),
                ("splitbrain grade 01 subs/ --jobs 2 --format csv", "only the gradebook")])
    p.add_argument("lab", help=LAB_HELP)
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help=".py or .ipynb files, or folders holding them")
    p.add_argument("--jobs", type=int, default=2,
                   help="submissions graded at once (default 2; each uses about one CPU core)")
    p.add_argument("--out", metavar="FOLDER",
                   help="output folder (default ./grades/LAB, e.g. grades/99-example); a "
                        "batch that stopped resumes from it")
    p.add_argument("--format", default="json,junit,gradescope,csv", metavar="LIST",
                   help="comma-separated reports to write: json (results.json), junit "
                        "(junit.xml), gradescope (gradescope/<submission>/results.json), csv "
                        "(gradebook.csv); default all four")
    p.add_argument("--seed", type=int, default=1, help=SEED_HELP)
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="grade each submission N times; the lowest score counts and a "
                        "disagreement between runs is reported (default 1)")
    p.set_defaults(func=cmd_grade)

    p = parser(sub, "verify", "prove each lab: complete, broken fails for the taught reason, "
                              "solution gets full marks",
               "For each lab, first check that it is complete (chapter, notebook without "
               "outputs, hints, hidden tests, variants, figures, faults the registry knows) and "
               "list what is left to write; then grade the shipped broken component and the "
               "solution: the broken one must lose points with the anomalies the lab teaches, "
               "the solution must get full marks. With --variants, every graded variant must "
               "get exactly its expected grade too. Run it after changing a lab or the kit. "
               "Exit 0 when every lab proves itself.",
               [("splitbrain verify", "every lab"),
                ("splitbrain verify 01 03 --repeat 3", "two labs, three times each"),
                ("splitbrain verify 04 --variants", "lab 04 and its graded variants"),
                ("splitbrain verify 04 --mutants", "and how many mutants the tests kill"),
                ("splitbrain verify 04 --mutants --survivors", "regrade only the last survivors"),
                ("splitbrain verify 99-example", "a new lab: what is left to write")])
    p.add_argument("labs", nargs="*", metavar="LAB", help="labs to prove (default: all)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="grade each component N times to catch flaky verdicts (default 1)")
    p.add_argument("--seed", type=int, default=1, help=SEED_HELP)
    p.add_argument("--jobs", type=int, default=2, help="gradings run at once (default 2)")
    p.add_argument("--variants", action="store_true",
                   help="also grade each lab's variants (autograder/LAB/variants): a different "
                        "correct design must get full marks, each mistake must lose exactly its "
                        "tests (default: off)")
    p.add_argument("--mutants", action="store_true",
                   help="also grade mutants of each lab's solution (one small mistake each) and "
                        "its shipped mistakes, and print the share the hidden tests kill; a lab "
                        "ships at 90%% (default: off; minutes per lab)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="with --mutants: grade a seeded random N of the generated mutants")
    p.add_argument("--survivors", action="store_true",
                   help="with --mutants: grade only the mutants that survived the last run "
                        "(the fast loop while strengthening the tests)")
    p.add_argument("--worktree", action="store_true",
                   help="grade the handout as it is in the working tree, for a lab's author who "
                        "is editing it (default: as committed, so a learner's edits never count)")
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
    if not labs:
        from splitbrain import paths
        print(f"error: no labs found under {paths.labs_dir()} (run the command inside the Split "
              f"Brain checkout, or set SPLITBRAIN_ROOT to it)", file=sys.stderr)
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
    t.add_column("lab", no_wrap=True)  # the name to type: never cut
    t.add_column("title")
    t.add_column("chapter", overflow="fold")
    t.add_column("progress")
    for r in rows:
        p = r["progress"]
        state = ("done" if p.get("done") else
                 f"{p.get('best', 0):g}/{p.get('max', 0):g} after {p['attempts']} attempt(s)"
                 if p.get("attempts") else "not started")
        t.add_row(r["lab"], r["title"], f"docs/{r['chapter']}", state)
    Console().print(t)
    todo = next((r["lab"] for r in rows if not r["progress"].get("done")), None)
    if todo:
        print(f"next: read the chapter, open labs/{todo}/ in JupyterLab (`splitbrain start`), fix "
              f"the component, then `splitbrain check {todo}`", file=sys.stderr)
    else:
        print("every lab is done.", file=sys.stderr)
    return 0


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
    from splitbrain.grading.handout import load_progress_for, next_hint, record_attempt
    from splitbrain.grading.runner import grade_submission
    out = paths.state_dir() / "check" / lab.slug
    with interruptible() as stopped, working(
            f"grading {submission.name} for {lab.slug} under faults (seed {args.seed}; a minute "
            f"or so)..."):
        result = grade_submission(lab, submission, args.seed, out, include_public=True)
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
    progress = record_attempt(lab.slug, result.score, result.max_score, full)
    hint = None if full else next_hint(lab)
    if args.json:
        print(json.dumps({**result.to_dict(), "graded": True, "progress": progress,
                          "hint": hint[1] if hint else None}, indent=1))
        return 0 if full else 1
    reports.summary(result)
    if full:
        print(f"\n{lab.slug} passes every test. On to the next lab: splitbrain labs")
        return 0
    if hint:
        print(f"\nhint {hint[0]}/{len(lab.hints)}: {hint[1]}")
    if not args.watch:
        print(f"\nnext: fix {_shown(submission)} and run `splitbrain check {lab.slug}` again "
              f"(add --watch to re-check on every save).")
    return 1


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
    if backup and backup.read_bytes() == restored.read_bytes():
        backup.unlink()  # nothing of the learner's to keep
        print(f"{restored} was already the handout; nothing changed")
        return 0
    if backup:
        print(f"your version is saved as {backup}")
        print(f"(to get it back: cp {backup} {restored})")
    print(f"{restored} is the handout again")
    return 0


def cmd_grade(args) -> int:
    from splitbrain.cli._batch import cmd_grade as run
    return run(args)


def cmd_verify(args) -> int:
    from splitbrain.cli._batch import cmd_verify as run
    return run(args)
