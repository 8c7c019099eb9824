"""``splitbrain new-lab | faults``: what a lab's author uses to add a lab."""
from __future__ import annotations

import argparse
import json
import sys

from splitbrain.cli._help import parser


def register(sub: argparse._SubParsersAction) -> None:
    p = parser(sub, "new-lab", "start a new lab: its folders, each file a template",
               "Write the folders of a new lab NN-slug: labs/NN-slug (lab.toml, README, notebook, "
               "the broken handout, public tests, rig/), solutions/NN-slug, autograder/NN-slug "
               "(hidden tests, variants) and docs/chapters/NN-slug.md. Every file is a template "
               "with TODO markers; `splitbrain verify NN-slug` lists what is left to write and "
               "grades the lab once it is complete. The book picks the lab up by itself. To "
               "remove the lab, delete those four paths: nothing else names it.",
               [("splitbrain new-lab 99-example", "a new lab numbered 17"),
                ("splitbrain verify 99-example", "what is left to write")])
    p.add_argument("slug", metavar="NN-slug",
                   help="two digits, a dash and lowercase words joined by dashes")
    p.set_defaults(func=cmd_new_lab)

    p = parser(sub, "faults", "list the fault registry: every fault a test can inject",
               "Every fault the nemesis can inject, by the one name that lab.toml, the `faults` "
               "marker, histories and reports use: the kit's own, plus those a lab's rig adds "
               "(rig/faults.py) when a lab is named.",
               [("splitbrain faults", "the kit's faults"),
                ("splitbrain faults 04", "the kit's and lab 04's"),
                ("splitbrain faults --json", "JSON only")])
    p.add_argument("lab", nargs="?", help="also the faults of this lab's rig (number or name)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    p.set_defaults(func=cmd_faults)


def cmd_new_lab(args) -> int:
    from splitbrain import paths
    from splitbrain.scaffold import ScaffoldError, new_lab
    root = paths.project_root()
    try:
        made = new_lab(root, args.slug)
    except ScaffoldError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote lab {made.slug}:")
    for p in made.created:
        print(f"  {p.relative_to(root)}")
    print(f"\nnext: `splitbrain verify {made.slug}` lists what is left to write.")
    print("to remove it: rm -r " + " ".join(str(p.relative_to(root)) for p in made.remove))
    return 0


def cmd_faults(args) -> int:
    from splitbrain import rig
    from splitbrain.faults.registry import FAULTS, KIT_FAULTS
    from splitbrain.lab import LabError, find_lab
    lab = None
    if args.lab:
        try:
            lab = find_lab(args.lab)
            rig.load(lab)
        except LabError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - a rig that fails to import
            print(f"error: the rig of {lab.slug if lab else args.lab} fails to import: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
            return 2
    rows = [{"name": name, "kind": cls.kind, "from": "kit" if name in KIT_FAULTS else lab.slug,
             "description": cls.description, "target": cls.needs}
            for name, cls in sorted(FAULTS.items(), key=lambda kv: (kv[0] not in KIT_FAULTS,
                                                                    kv[1].kind, kv[0]))]
    if args.json:
        print(json.dumps({"faults": rows}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"fault registry{f' with {lab.slug}' if lab else ''}")
    for col in ("name", "kind", "from", "what it does"):
        t.add_column(col, no_wrap=col in ("name", "kind"), overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["kind"], r["from"], r["description"])
    Console().print(t)
    if lab and lab.faults:
        unknown = [f for f in lab.faults if f not in FAULTS]
        if unknown:
            print(f"{lab.slug}: lab.toml names faults the registry does not know: {unknown}",
                  file=sys.stderr)
            return 1
    return 0
