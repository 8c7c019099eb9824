"""``splitbrain labs | check | hint | reset | grade | verify``: the learner's loop and the
instructor's grading."""
from __future__ import annotations

import argparse
import json
import os
import sys

from splitbrain.cli._help import parser
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

    p = parser(sub, "check", "grade your component of a lab and show the hint that fits",
               "Grade your component (labs/LAB/<component>, or --submission) with the hidden "
               "tests an instructor grades with, plus the lab's public tests, under injected "
               "faults (in a class's release, which holds no hidden tests: the public tests, and "
               "the grade comes from the instructor's hidden tests). Prints which guarantee broke, under which fault, the seed to replay it "
               "and the picture of what happened, then the lab's hint that fits what failed "
               "(`splitbrain hint` shows the next one about it). Exit 0 on full marks, 1 "
               "when a test fails, 2 when the lab or the file cannot be used, 3 when the "
               "services do not answer (that attempt does not count).",
               [("splitbrain check 01", "grade lab 01's component in labs/01-*/"),
                ("splitbrain check 01 --watch", "grade again on every save"),
                ("splitbrain check 01 --submission ~/try2/my_component.py", "grade another copy"),
                ("splitbrain check 01 --seed 7", "another fault schedule"),
                ("splitbrain check 01 --explore 20", "then 20 more random fault schedules")])
    p.add_argument("lab", help=LAB_HELP)
    p.add_argument("--submission", metavar="FILE",
                   help="grade this .py component or .ipynb notebook instead of "
                        "labs/LAB/<component> (a path relative to the current folder)")
    p.add_argument("--watch", action="store_true",
                   help="after grading, grade again every time the file changes (Ctrl-C stops)")
    p.add_argument("--json", action="store_true",
                   help="print only the result as JSON on stdout (score, tests, hint, progress)")
    p.add_argument("--seed", type=int, default=1, help=SEED_HELP)
    p.add_argument("--explore", type=int, default=0, metavar="N",
                   help="after a full-marks grading, run the lab's exploring tests with N more "
                        "seeds (each a different random fault schedule) and stop at the first "
                        "that breaks a guarantee, printing its seed to replay (default 0)")
    p.set_defaults(func=cmd_check)

    p = parser(sub, "hint", "show the next hint of a lab",
               "Show the next hint of a lab: after a failed `splitbrain check`, the next one "
               "about what failed (check shows the one that fits best); otherwise the next in "
               "the lab's order. Each call reveals one more; the last one repeats.",
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
               "folder of them, of one folder per learner, or of archives (.zip, .tar.gz; "
               "archives inside archives are unpacked too). In a learner's folder the file "
               "named like the component is graded, else the one file that defines what the lab "
               "requires; a learner with two such files, or none, is reported by name and the "
               "batch goes on. Each result is saved in "
               "FOLDER/<submission>/result.json as soon as it is known, so a batch stopped with "
               "Ctrl-C resumes where it was when run again with the same --out; unchanged "
               "submissions are not graded twice. Reports are written to FOLDER at the end. A "
               "submission that cannot be graded is reported as such and does not stop the "
               "batch. On several machines, each grades one --shard of the same folder and "
               "--merge puts their folders together into the reports one machine would have "
               "written. Exit 0 when the batch completed, 2 on bad arguments, 3 when the "
               "services do not answer (some tests not graded; run again), 130 when stopped with "
               "Ctrl-C.",
               [("splitbrain grade 01 submissions/", "every file in the folder"),
                ("splitbrain grade 01 alice.py bob.ipynb --out grades/", "two submissions"),
                ("splitbrain grade 01 subs/ --jobs 2 --format csv", "only the gradebook"),
                ("splitbrain grade 01 subs/ --shard 2/4 --out part2/", "the 2nd of 4 slices"),
                ("splitbrain grade --merge grades/ part1/ part2/ part3/ part4/",
                 "the reports of all four")])
    p.add_argument("lab", nargs="?", help=LAB_HELP + " (not with --merge)")
    p.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                   help=".py or .ipynb files, or folders or archives holding them")
    p.add_argument("--shard", metavar="I/N",
                   help="grade only the I-th of N deterministic slices of the batch (I from 1); "
                        "every machine given the same folder takes the same slice (default: the "
                        "whole batch)")
    p.add_argument("--merge", nargs="+", metavar=("OUT", "SHARD"),
                   help="merge the --out folders of every shard into OUT and write the reports "
                        "of the whole batch, no grading (default: off)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: the CPU cores plus one, "
                        f"{(os.cpu_count() or 1) + 1} here; a grading mostly waits on leases and timeouts)")
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
                ("splitbrain verify 06 --variants --repeat 4 --jobs 4 --load 4",
                 "on a busy machine: the same grades?"),
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
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="keep N more processes busy on the CPU while grading, as a loaded CI "
                        "machine or a class graded in parallel would: with --repeat, a verdict "
                        "that holds only on a quiet machine shows itself (default 0)")
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


def cmd_check(args) -> int:
    from splitbrain.cli._check import cmd_check as run
    return run(args)


def cmd_grade(args) -> int:
    from splitbrain.cli._batch import cmd_grade as run
    return run(args)


def cmd_verify(args) -> int:
    from splitbrain.cli._batch import cmd_verify as run
    return run(args)
