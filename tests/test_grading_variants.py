"""The variants harness of the kit (``splitbrain.grading.variants``): reading variants.toml,
building a variant from the handout or the solution, judging a grading, and grading them."""
import shutil
from pathlib import Path

import pytest

from splitbrain.grading.results import GradingResult, TestResult
from splitbrain.grading.variants import (ANY, Variant, VariantError, build, grade_variants, judge,
                                         load_variants)
from splitbrain.lab import load_lab

FIXTURE = Path(__file__).parent / "fixtures" / "project"


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    return load_lab(root / "labs" / "00-counter", root)


def test_variants_of_the_fixture_lab_load_with_their_kind(lab):
    vs = load_variants(lab)
    assert [(v.name, v.base, v.correct) for v in vs] == [
        ("ok_lua_incr", None, True), ("handout_with_incr_in_increment", "handout", True),
        ("wrong_get_then_set", "solution", False)]
    assert vs[2].fail == {"test_02": "lost-update"} and vs[2].select == "test_02"


def test_a_variant_is_built_from_its_base(lab, tmp_path):
    vs = {v.name: v for v in load_variants(lab)}
    from_handout = build(vs["handout_with_incr_in_increment"], lab, tmp_path).read_text()
    assert "self.redis.incr" in from_handout and "time.sleep" not in from_handout
    assert from_handout.startswith("# Variant handout_with_incr_in_increment of counter.py")
    from_solution = build(vs["wrong_get_then_set"], lab, tmp_path).read_text()
    assert "self.redis.get" in from_solution
    assert build(vs["ok_lua_incr"], lab, tmp_path) == lab.variants_dir / "ok_lua_incr.py"


def test_a_variant_is_built_from_another_variant(lab, tmp_path):
    """A small mistake in a different correct design is that design's file plus an edit."""
    toml = lab.variants_dir / "variants.toml"
    toml.write_text(toml.read_text() + '\n[[variant]]\nname = "wrong_lua_get"\n'
                    'base = "ok_lua_incr"\nwhat = "the Lua design, reading first"\n'
                    'fail = {"test_02" = "lost-update"}\n[[variant.replace]]\n'
                    'find = "INCR"\nwith = "GET"\n')
    v = {v.name: v for v in load_variants(lab)}["wrong_lua_get"]
    text = build(v, lab, tmp_path).read_text()
    assert text.startswith("# Variant wrong_lua_get of ok_lua_incr.py")
    assert text.count("GET") == 1 + (lab.variants_dir / "ok_lua_incr.py").read_text().count("GET")


def test_an_edit_that_no_longer_matches_fails_loudly(lab, tmp_path):
    v = Variant(name="m", what="edit", base="solution", replace=({"find": "x = 1", "with": "y"},))
    for text in ("y = 1\n", "x = 1\nx = 1\n"):
        with pytest.raises(VariantError, match="must occur exactly once"):
            build(v, lab, tmp_path, base_text=text)


@pytest.mark.parametrize("text, message", [
    ("", "variant`: missing"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nfails = {}\n', "unknown field"),
    ('[[variant]]\nname = "a"\nwhat = "w"\n', "a.py not found"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nbase = "solution"\n', "needs \\[\\[variant.replace"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nbase = "elsewhere"\n', "needs \\[\\[variant.replace"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nbase = "else where"\n', "`base`: string should match"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nbase = "elsewhere"\n[[variant.replace]]\nfind = "x"\n'
     'with = "y"\n', "base = 'elsewhere' is neither .* nor a variant with a file of its own"),
    ('[[variant]]\nname = "a"\nwhat = "w"\nfail = {"t" = 1}\n', "fail.t`: input should be a "
                                                                  "valid string"),
])
def test_a_malformed_variants_file_names_what_is_wrong(lab, text, message):
    for p in lab.variants_dir.glob("*.py"):
        p.unlink()
    (lab.variants_dir / "variants.toml").write_text(text)
    with pytest.raises(VariantError, match=message):
        load_variants(lab)


def test_a_variant_file_nobody_lists_is_refused(lab):
    (lab.variants_dir / "stray.py").write_text("X = 1\n")
    with pytest.raises(VariantError, match="stray.py .* is listed by no"):
        load_variants(lab)


def _result(*tests):
    return GradingResult("00-counter", "x.py", 1, tuple(
        TestResult(name, 1.0 if status == "passed" else 0.0, 1.0, status, "why", anomalies=kinds)
        for name, status, kinds in tests))


def test_judge_names_the_variant_the_test_and_what_was_expected():
    v = Variant(name="wrong_x", what="a mistake", select="test_03 or test_04",
                fail={"test_03": "stale-write"})
    assert judge(v, _result(("test_03_a", "failed", ("stale-write",)),
                            ("test_04_b", "passed", ()))) == []
    wrong_kind = judge(v, _result(("test_03_a", "failed", ("lost-update",)),
                                  ("test_04_b", "passed", ())), "01-x")
    assert len(wrong_kind) == 1 and "01-x:wrong_x" in wrong_kind[0]
    assert "expected failed with stale-write" in wrong_kind[0] and "lost-update" in wrong_kind[0]
    other = judge(v, _result(("test_03_a", "failed", ("stale-write",)),
                             ("test_04_b", "timeout", ())))
    assert other and "test_04_b: expected passed, got timeout" in other[0]
    assert "matches 0 of the tests" in judge(v, _result(("test_04_b", "passed", ())))[0]
    assert judge(v, _result()) and judge(v, GradingResult("01", "x", 1, error="boom"))
    lazy = Variant(name="lazy", what="nothing", fail={"test_03": ANY})
    assert judge(lazy, _result(("test_03_a", "failed", ()))) == []
    assert judge(lazy, _result(("test_03_a", "passed", ())))


@pytest.mark.slow
def test_the_fixture_lab_variants_get_their_expected_grades(lab, services, monkeypatch,
                                                            tmp_path):
    monkeypatch.setenv("SPLITBRAIN_ROOT", str(lab.root))
    monkeypatch.setenv("SPLITBRAIN_REDIS_URL", services.redis_url)
    monkeypatch.setenv("SPLITBRAIN_POSTGRES_URL", services.postgres_url)
    outcomes = grade_variants(lab, out_dir=tmp_path / "out")
    assert [o.problems for o in outcomes] == [(), (), ()]
    wrong = outcomes[2].result
    assert [(t.name, t.status) for t in wrong.tests] == [
        ("test_02_two_workers_do_not_lose_increments", "failed")]
