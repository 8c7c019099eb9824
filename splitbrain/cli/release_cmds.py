"""``splitbrain release``: the learner's repository for a class, or a lab's Gradescope
autograder zip."""
from __future__ import annotations

import argparse
import sys

from splitbrain.cli._help import parser


def register(sub: argparse._SubParsersAction) -> None:
    p = parser(sub, "release", "the learner's repository for a class, or a Gradescope "
                               "autograder zip",
               "Write the learner's edition of this checkout into OUT: the labs (notebooks, "
               "handouts, public tests, rigs), the book and the kit, taken from the committed "
               "tree, and none of solutions/, autograder/ (hidden tests, variants, mutants), the "
               "kit's own tests or anything else that would reveal them. The release is scanned "
               "for every hidden test's name and every solution line before it is kept; the "
               "summary says what was left out and why. In a release `splitbrain check` runs "
               "the public tests and says that the grade comes from the instructor's hidden "
               "tests.\n\n"
               "With --gradescope LAB, write OUT.zip instead: Gradescope's autograder for one "
               "lab (setup.sh, run_autograder, the kit, the lab's hidden tests). Upload it as the "
               "assignment's autograder; learners hand in the component file (or their "
               "notebook). Exit 0 when written, 2 when it cannot be.",
               [("splitbrain release ../class-2025", "the learners' repository"),
                ("splitbrain release ../class-2025 --force", "replace an older release there"),
                ("splitbrain release --gradescope 01 lab01-gradescope.zip",
                 "lab 01's Gradescope autograder")])
    p.add_argument("out", metavar="OUT",
                   help="the folder to write the release into (new or empty), or with "
                        "--gradescope the .zip to write")
    p.add_argument("--gradescope", metavar="LAB",
                   help="write LAB's Gradescope autograder zip to OUT instead of a release "
                        "(the lab: its number, folder name or the slug's words)")
    p.add_argument("--ref", default="HEAD",
                   help="the commit to take the files from (default HEAD: uncommitted edits "
                        "never reach learners)")
    p.add_argument("--seed", type=int, default=1,
                   help="with --gradescope: seed of the fault schedules every submission is "
                        "graded with (default 1)")
    p.add_argument("--force", action="store_true",
                   help="replace what OUT holds (a non-empty folder, an existing zip)")
    p.set_defaults(func=cmd_release)


def cmd_release(args) -> int:
    from splitbrain.release import ReleaseError, build
    try:
        if args.gradescope:
            from splitbrain.release_gradescope import build_zip
            made = build_zip(args.gradescope, args.out, ref=args.ref, seed=args.seed,
                             force=args.force)
            print(f"wrote {made['zip']}: {made['lab']} at {made['source_commit'][:12]}, "
                  f"{made['files']} files, hidden tests {', '.join(made['hidden_tests'])}, "
                  f"seed {made['seed']}")
            print(f"upload it as the assignment's autograder (Ubuntu 22.04 or 24.04 base image); "
                  f"learners hand in {made['component']} or their notebook.")
            return 0
        rel = build(args.out, ref=args.ref, force=args.force)
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(rel.summary())
    print(f"next: cd {rel.out} && git init && git add -A && git commit -m 'Split Brain "
          f"labs' (then push it where your learners clone from)")
    return 0
