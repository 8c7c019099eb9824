"""The hidden tests judge behaviour, not one design: a different correct component gets full marks,
and a subtly wrong one loses exactly the tests that teach its mistake, for the anomaly the chapter
names. Each variant is graded by the kit's own runner (what ``splitbrain grade`` uses) on real
services.

The variants are data, one ``tests/labs/NN/variants.toml`` per lab:

    binaries = ["redis-server"]   # programs the gradings need (optional, at the top)

    [[variant]]
    name = "wrong_plain_del"      # the file tests/labs/NN/<name>.py ...
    base = "solution"             # ... or the lab's solution with the edits below
    what = "..."                  # the mistake, or the other correct design, in one sentence
    select = "test_05"            # pytest -k expression; omitted: every hidden test
    fail = {"test_05" = "overlapping-holders"}   # these tests must fail with that anomaly kind;
                                  # "any" accepts a failure of any kind; every other selected
                                  # test must pass
    [[variant.replace]]           # with base = "solution": one local edit; `find` must occur
    find = "..."                  # exactly once in the solution
    with = "..."

The gradings of the selected variants run two at a time (SPLITBRAIN_VARIANT_JOBS), each in a pool
process of its own: the -k selection reaches the runner's pytest through PYTEST_ADDOPTS, which is
set per process.
"""
from __future__ import annotations

import multiprocessing
import os
import shlex
import shutil
import tomllib
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from splitbrain import paths
from splitbrain.grading.results import GradingResult, TestResult
from splitbrain.lab import LabInfo, discover_labs
from splitbrain.testing import require_binary

ROOT = paths.project_root()
LABS_DIR = ROOT / "tests" / "labs"
SEED = 1
JOBS = max(1, int(os.environ.get("SPLITBRAIN_VARIANT_JOBS", "2")))  # gradings at once
ANY = "any"
KEYS = {"name", "what", "select", "fail", "base", "replace"}


class VariantError(ValueError):
    """A variants.toml entry that cannot be graded; the message names the file and the fix."""


@dataclass(frozen=True)
class Variant:
    number: str                       # "01": the folder under tests/labs
    name: str
    what: str
    select: str | None = None
    fail: dict[str, str] = field(default_factory=dict)
    base: str | None = None           # "solution": built from the solution by `replace`
    replace: tuple[tuple[str, str], ...] = ()
    where: Path = LABS_DIR
    binaries: tuple[str, ...] = ()    # programs the grading needs on PATH (from the file's top)

    @property
    def id(self) -> str:
        return f"{self.number}-{self.name}"

    @property
    def file(self) -> Path:
        return self.where.parent / f"{self.name}.py"


def _str(entry: dict, key: str, where: str, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise VariantError(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value


def parse_variants(path: Path, number: str) -> list[Variant]:
    """Read one variants.toml; raise VariantError naming the file, the variant and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise VariantError(f"{path}: not valid TOML: {e}") from None
    binaries = data.get("binaries", [])
    if not isinstance(binaries, list) or not all(isinstance(b, str) for b in binaries):
        raise VariantError(f"{path}: `binaries` lists program names, e.g. [\"redis-server\"]")
    entries = data.get("variant")
    if not isinstance(entries, list) or not entries:
        raise VariantError(f"{path}: no [[variant]] tables; list each graded variant as one")
    out: list[Variant] = []
    for i, entry in enumerate(entries):
        where = f"{path}: variant #{i + 1} ({entry.get('name', 'no name')})"
        unknown = set(entry) - KEYS
        if unknown:
            raise VariantError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(KEYS)}")
        name, what = _str(entry, "name", where), _str(entry, "what", where)
        select = _str(entry, "select", where, required=False)
        fail = entry.get("fail", {})
        if not isinstance(fail, dict) or not all(isinstance(v, str) and v for v in fail.values()):
            raise VariantError(f"{where}: `fail` maps a test (\"test_03\") to the anomaly kind it "
                               f"must fail with, or to \"{ANY}\"; got {fail!r}")
        base = _str(entry, "base", where, required=False)
        edits = entry.get("replace", [])
        if base not in (None, "solution"):
            raise VariantError(f"{where}: base = {base!r}; the only base is \"solution\"")
        if base and not edits:
            raise VariantError(f"{where}: base = \"solution\" needs [[variant.replace]] edits")
        if edits and not base:
            raise VariantError(f"{where}: [[variant.replace]] needs base = \"solution\"")
        replace = []
        for edit in edits:
            if not isinstance(edit, dict) or set(edit) != {"find", "with"} or not all(
                    isinstance(v, str) for v in edit.values()) or not edit["find"]:
                raise VariantError(f"{where}: each [[variant.replace]] has exactly a non-empty "
                                   f"`find` string and a `with` string; got {edit!r}")
            replace.append((edit["find"], edit["with"]))
        v = Variant(number, name, what, select, dict(fail), base, tuple(replace), path,
                    tuple(binaries))
        if not base and not v.file.is_file():
            raise VariantError(f"{where}: {v.file} not found; add the file, or build the variant "
                               f"from the solution with base = \"solution\"")
        if base and v.file.is_file():
            raise VariantError(f"{where}: both {v.file.name} and base = \"solution\"; keep one")
        out.append(v)
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise VariantError(f"{path}: a variant name appears twice: {sorted(names)}")
    return out


def discover_variants(labs_dir: Path = LABS_DIR) -> list[Variant]:
    return [v for p in sorted(labs_dir.glob("*/variants.toml"))
            for v in parse_variants(p, p.parent.name)]


def mutate(text: str, variant: Variant, source: Path) -> str:
    """Apply the variant's edits to the solution's text; each `find` must occur exactly once."""
    for find, with_ in variant.replace:
        n = text.count(find)
        if n != 1:
            raise VariantError(
                f"{variant.where}: variant {variant.name}: `find` occurs {n} times in {source} "
                f"(it must occur exactly once); update the edit to the current solution:\n{find}")
        text = text.replace(find, with_)
    return f"# Variant {variant.name} of {source.name}: {variant.what}\n{text}"


def judge(variant: Variant, result: GradingResult) -> list[str]:
    """What is wrong with the grading of ``variant``, one line per problem (empty: as expected)."""
    head = f"{variant.id} ({variant.what})"
    if result.error:
        return [f"{head}: the grader could not grade it: {result.error}"]
    if not result.tests:
        return [f"{head}: no test ran (select = {variant.select!r})"]
    problems = []
    for key in variant.fail:
        hits = [t.name for t in result.tests if t.name == key or t.name.startswith(key + "_")]
        if len(hits) != 1:
            problems.append(f"{head}: `fail` names {key}, which matches {len(hits)} of the tests "
                            f"that ran ({', '.join(t.name for t in result.tests)})")
    for t in result.tests:
        key = next((k for k in variant.fail if t.name == k or t.name.startswith(k + "_")), None)
        detail = f"anomalies {list(t.anomalies) or 'none'}; grader said: {t.message[:1500]}"
        if key is None and t.status != "passed":
            problems.append(f"{head}: {t.name}: expected passed, got {t.status}; {detail}")
        elif key is not None:
            want = variant.fail[key]
            if t.status != "failed":
                problems.append(f"{head}: {t.name}: expected failed ({want}), got {t.status}; "
                                f"{detail}")
            elif want != ANY and want not in t.anomalies:
                problems.append(f"{head}: {t.name}: expected failed with {want}, got failed; "
                                f"{detail}")
    return problems


def variant_source(variant: Variant, lab: LabInfo, dest: Path) -> Path:
    if not variant.base:
        return variant.file
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{variant.name}.py"
    out.write_text(mutate(lab.solution_path.read_text(encoding="utf-8"), variant,
                          lab.solution_path), encoding="utf-8")
    return out


def grade_in_child(slug: str, submission: str, select: str | None, env: dict[str, str],
                   out_dir: str, jobs: int) -> GradingResult:
    """Runs in a pool process: the selection travels in this process's environment."""
    from splitbrain.grading.runner import grade_submission
    from splitbrain.lab import load_lab
    os.environ.update(env)
    os.environ["PYTEST_ADDOPTS"] = f"-k {shlex.quote(select)}" if select else ""
    lab = load_lab(ROOT / "labs" / slug, ROOT)
    return grade_submission(lab, submission, SEED, out_dir, jobs=jobs)


VARIANTS = discover_variants()
LABS = {lab.slug[:2]: lab for lab in discover_labs(ROOT)}


@pytest.fixture(scope="module")
def gradings(request, services, tmp_path_factory):
    """Start the gradings of every variant this session runs, JOBS at a time; each test waits
    for its own. The gradings use this session's services (through the URL variables)."""
    env = {"SPLITBRAIN_HOME": str(tmp_path_factory.mktemp("home"))}
    for var, value in (("SPLITBRAIN_POSTGRES_URL", services.postgres_url),
                       ("SPLITBRAIN_REDIS_URL", services.redis_url),
                       ("SPLITBRAIN_KAFKA_BOOTSTRAP", services.kafka_bootstrap)):
        if value:
            env[var] = value
    wanted = [item.callspec.params["variant"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")
              and "variant" in item.callspec.params]
    built = tmp_path_factory.mktemp("built")
    futures: dict[str, Future] = {}
    runnable = [v for v in wanted if all(shutil.which(b) for b in v.binaries)]
    with ProcessPoolExecutor(JOBS, mp_context=multiprocessing.get_context("spawn")) as pool:
        # whole suites first: the longest gradings start early and the short ones fill the gaps
        for v in sorted(runnable, key=lambda v: v.select is not None):
            lab = LABS.get(v.number)
            try:
                if lab is None:
                    raise VariantError(f"{v.where}: no lab in labs/ is numbered {v.number}")
                src = variant_source(v, lab, built)
            except VariantError as e:   # only this variant's test fails, with the message
                futures[v.id] = Future()
                futures[v.id].set_exception(e)
                continue
            futures[v.id] = pool.submit(
                grade_in_child, lab.slug, str(src), v.select, env,
                str(tmp_path_factory.mktemp(v.id)), 1 if v.select else 2)
        yield futures
        for f in futures.values():
            f.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_variant_is_graded_for_the_right_reason(variant, gradings):
    for binary in variant.binaries:
        require_binary(binary)
    problems = judge(variant, gradings[variant.id].result())
    assert not problems, "\n".join(problems)


def test_every_lab_has_graded_variants():
    """A lab without variants is graded only against its own solution."""
    numbers = {v.number for v in VARIANTS}
    missing = sorted(set(LABS) - numbers)
    assert not missing, f"labs without tests/labs/NN/variants.toml: {missing}"
    unknown = sorted(numbers - set(LABS))
    assert not unknown, f"tests/labs/{unknown} match no lab in labs/"


def test_every_variant_file_is_listed():
    listed = {v.file for v in VARIANTS}
    stray = sorted(str(p.relative_to(ROOT)) for p in LABS_DIR.glob("*/*.py") if p not in listed)
    assert not stray, f"variant files no variants.toml lists (so never graded): {stray}"


def test_every_mutation_applies_to_the_current_solution(tmp_path):
    for v in VARIANTS:
        if v.base:
            assert variant_source(v, LABS[v.number], tmp_path).is_file()


def _result(*tests: tuple[str, str, tuple[str, ...]]) -> GradingResult:
    return GradingResult("01-fencing-locks", "x.py", SEED, tuple(
        TestResult(name, 1.0 if status == "passed" else 0.0, 1.0, status, "why", anomalies=kinds)
        for name, status, kinds in tests))


def test_judge_names_the_variant_the_test_and_what_was_expected():
    v = Variant("01", "wrong_x", "a mistake", "test_03 or test_04", {"test_03": "stale-write"})
    right = _result(("test_03_a", "failed", ("stale-write",)), ("test_04_b", "passed", ()))
    assert judge(v, right) == []
    wrong_kind = judge(v, _result(("test_03_a", "failed", ("lost-update",)),
                                  ("test_04_b", "passed", ())))
    assert len(wrong_kind) == 1 and "01-wrong_x" in wrong_kind[0] and "test_03_a" in wrong_kind[0]
    assert "expected failed with stale-write" in wrong_kind[0] and "lost-update" in wrong_kind[0]
    other_fails = judge(v, _result(("test_03_a", "failed", ("stale-write",)),
                                   ("test_04_b", "timeout", ())))
    assert other_fails and "test_04_b: expected passed, got timeout" in other_fails[0]
    not_run = judge(v, _result(("test_04_b", "passed", ())))
    assert not_run and "matches 0 of the tests that ran" in not_run[0]
    assert judge(v, _result()) and judge(v, GradingResult("01", "x", SEED, error="boom"))
    any_kind = Variant("01", "lazy", "nothing", None, {"test_03": ANY})
    assert judge(any_kind, _result(("test_03_a", "failed", ()))) == []
    assert judge(any_kind, _result(("test_03_a", "passed", ())))


def test_a_mutation_that_no_longer_matches_fails_loudly(tmp_path):
    v = Variant("01", "m", "edit", replace=(("x = 1", "x = 2"),), base="solution")
    assert mutate("x = 1\n", v, tmp_path / "s.py").endswith("x = 2\n")
    for text in ("y = 1\n", "x = 1\nx = 1\n"):
        with pytest.raises(VariantError, match="must occur exactly once"):
            mutate(text, v, tmp_path / "s.py")


def test_a_malformed_variants_file_names_what_is_wrong(tmp_path):
    path = tmp_path / "01" / "variants.toml"
    path.parent.mkdir()
    for text, message in (
            ("", "no \\[\\[variant\\]\\]"),
            ('[[variant]]\nname = "a"\nwhat = "w"\nfails = {}\n', "unknown key"),
            ('[[variant]]\nname = "a"\nwhat = "w"\n', "a.py not found"),
            ('[[variant]]\nname = "a"\nwhat = "w"\nbase = "solution"\n', "needs"),
            (('[[variant]]\nname = "a"\nwhat = "w"\nbase = "solution"\nfail = {"t" = 1}\n'
              '[[variant.replace]]\nfind = "x"\nwith = "y"\n'), "anomaly kind")):
        path.write_text(text)
        with pytest.raises(VariantError, match=message):
            parse_variants(path, "01")
