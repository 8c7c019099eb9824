"""``splitbrain book``: build or serve the book, check it quickly, or record a lab's figures again.

The lab pages, nav and figures are made from labs/ at every mkdocs build (``splitbrain.book``), so
there is nothing to regenerate by hand."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from splitbrain import book, paths
from splitbrain.book import BookError
from splitbrain.cli._help import parser


def register(sub: argparse._SubParsersAction) -> None:
    p = parser(sub, "book", "build or serve the book; record a lab's figures again",
               "The book's lab pages, labs index, Faults page, nav and figures are made from each "
               "labs/NN-slug/lab.toml, the fault registry and the recordings in "
               "labs/NN-slug/figures/ at every build of the book: nothing in docs/ lists a lab, "
               "and there is nothing to regenerate by hand.\n\n"
               "Without an option, build the site with `mkdocs build --strict` and check the "
               "tables of labs in README.md and docs/index.md. --check does the quick part only "
               "(every lab can be put in the book, the tables list every lab), without drawing or "
               "building. --serve serves the book and rebuilds it when docs/ or labs/ change. "
               "--record LAB grades the lab's broken handout as shipped (the services must be "
               "up, or startable) and copies the history and verdict of each figure's test "
               "(lab.toml [[figures]]) over labs/NN-slug/figures/; build or serve to see them.",
               [("splitbrain book", "build the book into site/"),
                ("splitbrain book --check", "exit 1 if a lab cannot go in the book"),
                ("splitbrain book --serve", "read it at http://127.0.0.1:8000/"),
                ("splitbrain book --record 01", "record lab 01's figures again"),
                ("splitbrain book --tables", "write README.md's table of labs")])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true",
                   help="check without building: exit 1 if a lab cannot be put in the book (an "
                        "unknown fault, a missing chapter or recording) or a table of labs is "
                        "wrong")
    g.add_argument("--serve", action="store_true",
                   help="serve the book, rebuilt on every change to docs/ or labs/ (Ctrl-C stops "
                        "it)")
    g.add_argument("--tables", action="store_true",
                   help="write README.md's table of labs from each lab.toml (you_fix, you_see); "
                        "the home page's is made at every build (default: off)")
    g.add_argument("--record", metavar="LAB",
                   help="record LAB's figures again from a grading of its broken handout (a "
                        "number or a name)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the built site goes (default: site/ in the project)")
    p.add_argument("--port", type=int, default=8000, help="the port of --serve (default: 8000)")
    p.add_argument("--seed", type=int, default=1,
                   help="the seed of --record's grading (default: 1, as `splitbrain check`)")
    p.set_defaults(func=cmd_book)


def _error(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _mkdocs(root: Path, *args: str) -> int:
    env = {"DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1", **os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "mkdocs", *args], cwd=root, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # from a terminal mkdocs got the Ctrl-C too; else pass it on
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def _labs_fit(root: Path) -> int:
    """0 when every lab can be put in the book (its faults known, its chapter and recordings
    there), else 1 after saying why; quick: nothing is drawn or built."""
    notes: list[str] = []
    try:
        book.render(root, draw=False, notes=notes)
    except BookError as e:
        return _error(str(e))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _tables_fit(root: Path) -> int:
    problems = book.table_problems(root)
    if problems:
        return _error("the tables of labs do not match labs/:\n"
                      + "\n".join(f"- {p}" for p in problems)
                      + "\nEdit those rows by hand: each lab's row names one of its "
                        "taught_anomalies in backquotes.")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    root = paths.project_root()
    if not (root / "mkdocs.yml").is_file():
        return _error(f"no mkdocs.yml in {root}: run this inside the Split Brain checkout (or "
                      f"set SPLITBRAIN_ROOT to it)", 2)
    if args.record:
        return _record(args)
    if args.tables:
        from splitbrain import book
        try:
            changed = book.write_tables(root)
        except book.BookError as e:
            return _error(str(e))
        print(f"wrote {changed[0]}" if changed else "README.md's table of labs was current")
        return _tables_fit(root)
    if args.check:
        rc = _labs_fit(root) or _tables_fit(root)
        if rc == 0:
            print("every lab can be put in the book, and the tables of labs list them all")
        return rc
    if args.serve:
        return _labs_fit(root) or _mkdocs(root, "serve", "--dev-addr", f"127.0.0.1:{args.port}",
                                          "--watch", "labs")
    out = (args.out or root / "site").resolve()
    rc = _labs_fit(root)
    if rc:
        return rc
    if _mkdocs(root, "build", "--strict", "--site-dir", str(out)):
        return _error("the book did not build: mkdocs's messages above say where (with --strict "
                      "every warning, such as a broken link, stops the build)")
    rc = _tables_fit(root)
    if rc == 0:
        print(f"built the book into {out}: open {out / 'index.html'}, or `splitbrain book "
              f"--serve`")
    return rc


def _record(args: argparse.Namespace) -> int:
    from splitbrain.cli._run import interruptible, services_problem, working
    from splitbrain.lab import LabError, find_lab
    try:
        lab = find_lab(args.record)
    except LabError as e:
        return _error(str(e), 2)
    if not lab.figures:
        return _error(f"{lab.slug} has no [[figures]] in labs/{lab.slug}/lab.toml: add one (name, "
                      f"test, picture, title) to say which hidden test's history to draw", 2)
    problem = services_problem([lab])
    if problem:
        return _error(problem, 3)
    tests = ", ".join(f.test for f in lab.figures)
    done, failed = [], None
    with interruptible() as stopped, working(f"grading the broken handout of {lab.slug} "
                                             f"({tests}, seed {args.seed})..."):
        try:
            done = record(lab, args.seed)
        except BookError as e:
            failed = e
    if stopped.is_set():
        print("stopped: the figure files were left as they were.", file=sys.stderr)
        return 130
    if failed is not None:
        return _error(f"{failed}\nThe figure files were left as they were.")
    for fig, test in done:
        where = lab.figures_dir.relative_to(lab.root)
        print(f"recorded {where}/{fig.name}.history.jsonl and {fig.name}.verdict.json "
              f"from {test}")
    print(f"next: `splitbrain book --serve` and look at the figure; if it shows something else "
          f"now, change its title in labs/{lab.slug}/lab.toml (and the chapter's text).")
    return 0


def record(lab, seed: int = 1, workdir: Path | None = None) -> list[tuple]:
    """Record each of ``lab``'s figures again: grade the broken handout as shipped
    (``handout.pristine``) with only the figure's test selected, and copy that test's history and
    verdict over the lab's figure files, all of them once every figure has its recording (a
    failure changes none). Returns (figure, test name) pairs. The services must be up."""
    from splitbrain.grading.handout import pristine
    from splitbrain.grading.runner import grade_submission
    found = []
    with tempfile.TemporaryDirectory(prefix="splitbrain-record-", dir=workdir) as tmp:
        handout = pristine(lab, Path(tmp) / "handout")
        results: dict = {}
        for fig in lab.figures:
            if fig.test not in results:
                results[fig.test] = grade_submission(lab, handout, seed,
                                                     Path(tmp) / f"grade-{len(results)}",
                                                     select=fig.test)
            found.append((fig, *_recorded(lab, fig, results[fig.test])))
        lab.figures_dir.mkdir(parents=True, exist_ok=True)
        for fig, _, history, verdict in found:
            shutil.copyfile(history, lab.figures_dir / f"{fig.name}.history.jsonl")
            shutil.copyfile(verdict, lab.figures_dir / f"{fig.name}.verdict.json")
    return [(fig, test) for fig, test, _, _ in found]


def _recorded(lab, fig, result) -> tuple[str, Path, Path]:
    """(test name, history, verdict) of the figure's test in a grading of the broken handout."""
    where = f"lab {lab.slug}, figure {fig.name!r}"
    if result.error:
        raise BookError(f"{where}: the grading could not run:\n{result.error}")
    tests = sorted(result.tests, key=lambda t: (t.name != fig.test,
                                                not t.name.startswith(fig.test), t.name))
    if not tests:
        raise BookError(f"{where}: no hidden test matches {fig.test!r}; set the figure's `test` "
                        f"to a test of autograder/{lab.slug}/")
    for t in tests:
        verdict = _verdict_beside(t.history) if t.status == "failed" else None
        if verdict is None:
            continue
        kinds = {a.get("kind") for a in json.loads(verdict.read_text()).get("anomalies", ())}
        if not kinds & set(lab.taught_anomalies):
            raise BookError(f"{where}: the broken handout's {t.name} shows {sorted(kinds)}, "
                            f"none of the lab's taught_anomalies {list(lab.taught_anomalies)}; "
                            f"a figure shows what the lab teaches")
        return t.name, Path(t.history), verdict
    t = tests[0]
    raise BookError(f"{where}: the broken handout's {t.name} ended {t.status}"
                    f"{' without a recorded verdict' if t.status == 'failed' else ''}; a figure "
                    f"draws a test that fails with an anomaly (expect_valid)"
                    + (f":\n{t.message}" if t.message and t.status != "failed" else ""))


def _verdict_beside(history: str | None) -> Path | None:
    """The ``<test>.verdict.json`` that ``expect_valid`` saved beside ``<test>.history.jsonl``."""
    if not history or not history.endswith(".history.jsonl"):
        return None
    path = Path(history[:-len(".history.jsonl")] + ".verdict.json")
    return path if path.is_file() and Path(history).is_file() else None
