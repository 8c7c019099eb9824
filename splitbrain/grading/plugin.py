"""The pytest plugin every hidden and public test runs under (``-p splitbrain.grading.plugin``).

Options: ``--lab SLUG``, ``--submission PATH`` (.py or .ipynb), ``--seed N``, ``--sb-results PATH``
(JSON of per-test outcomes, written by this trusted process), ``--sb-artifacts DIR`` (histories,
pictures, worker logs). Markers: ``points(n)``, ``faults(*names)``, ``hidden``. Fixtures: ``lab``,
``component``, ``services``, ``ns``, ``spawn``, ``proxy``, ``nemesis``, ``history``, ``seed``.
Each test runs under a wall-clock limit (``test_timeout_s`` of lab.toml).

The lab's rig (``labs/NN-slug/rig``) is loaded as ``rig`` before any test file is imported, so
hidden tests and their conftest import it like any package. Every fault goes through the
``nemesis`` fixture: the ``faults`` marker names registry faults, and a test that passes without
injecting a fault it declares is an error of the test, not of the submission.
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from splitbrain.grading import context as ctxmod
from splitbrain.grading.env import ensure_up, open_namespace, resources_of, services_down
from splitbrain.grading.outcome import classify, faults_of, undeclared_injection
from splitbrain.history import History

DEFAULT_SEED = 1


class TestTimeout(Exception):
    """The test ran past the lab's per-test wall-clock limit."""

    __test__ = False  # not a pytest test class


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("splitbrain", "Split Brain grading")
    g.addoption("--lab", default=None, help="lab slug (default: from the test files' folder)")
    g.addoption("--submission", default=None,
                help="component to grade: a .py file or a notebook (default: the lab's own file)")
    g.addoption("--seed", type=int, default=DEFAULT_SEED, help="seed of the fault schedules")
    g.addoption("--sb-results", default=None, help="write per-test results as JSON here")
    g.addoption("--sb-artifacts", default=None, help="folder for histories, pictures, logs "
                                                     "(default: <state dir>/artifacts)")
    # the checkout's pyproject.toml sets pytest-timeout's `timeout` for the kit's own tests; a
    # learner's run of a lab's public tests reads that file too, where pytest-timeout (a test
    # extra) is usually not installed: known here, it is not an "Unknown config option". When
    # pytest-timeout is loaded, its own definition (the same) replaces this one.
    parser.addini("timeout", "pytest-timeout's per-test limit in seconds (read by that plugin)")


def pytest_configure(config: pytest.Config) -> None:
    _load_rig(config)
    config.addinivalue_line("markers", "points(n): points this test is worth")
    config.addinivalue_line("markers", "faults(*names): faults this test injects")
    config.addinivalue_line("markers", "hidden: a hidden test (its details are shown after "
                                       "grades are published)")
    config.addinivalue_line("markers", "explore: a test that runs a seeded random fault schedule "
                                       "(`splitbrain check --explore N` runs it with N more "
                                       "seeds)")
    config._sb_results = {}  # type: ignore[attr-defined]
    art = config.getoption("--sb-artifacts")
    if not art:  # a plain pytest run keeps its pictures and histories in the state dir
        from splitbrain import paths
        art = paths.state_dir() / "artifacts"
    config._sb_artifacts = Path(art)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args: list[str]) -> None:
    """Before any conftest is imported: load the lab's rig, so a conftest can ``import rig``."""
    ns = early_config.known_args_namespace
    name = getattr(ns, "lab", None)
    paths = [Path(a.split("::")[0]) for a in getattr(ns, "file_or_dir", None) or []
             if not a.startswith("-")]
    _load_rig(early_config, name, paths)


def _load_rig(config: pytest.Config, name: str | None = None,
              paths: list[Path] | None = None) -> None:
    """Load the lab's rig as ``rig`` when the lab is known before collection (``--lab``, or test
    paths inside a lab's folders)."""
    from splitbrain import rig
    from splitbrain.lab import find_lab
    if rig.loaded_path() is not None:
        return
    try:
        if name or config.getoption("--lab", None):
            lab = find_lab(name or config.getoption("--lab"))
        else:
            lab = _lab_from_items(config, paths if paths is not None else
                                  [Path(a.split("::")[0]) for a in config.args])
    except Exception:  # noqa: BLE001 - not a lab's tests (the kit's own plugin tests)
        return
    config._sb_lab_info = lab  # type: ignore[attr-defined]
    rig.load(lab)


def _lab_from_items(config: pytest.Config, paths: list[Path]):
    from splitbrain.lab import LabError, find_lab, load_lab
    name = config.getoption("--lab")
    if name:
        cache = config.__dict__.setdefault("_sb_lab_cache", {})
        if name not in cache:
            cache[name] = find_lab(name)
        return cache[name]
    for p in paths:
        for parent in p.resolve().parents:
            if parent.parent.name in ("autograder", "labs", "solutions"):
                root = parent.parent.parent
                return load_lab(root / "labs" / parent.name, root)
    raise LabError("cannot tell which lab these tests belong to: pass --lab SLUG")


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest):
    info = _lab_from_items(request.config, [Path(str(i.path)) for i in request.session.items])
    request.config._sb_lab = info.slug  # type: ignore[attr-defined]
    return info


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--seed")


@pytest.fixture(scope="session")
def component(request: pytest.FixtureRequest, lab) -> Iterator[Path]:
    """Path of the component file under test (a notebook submission is extracted to a .py)."""
    from splitbrain.grading.submissions import SubmissionError, component_file
    sub = request.config.getoption("--submission")
    with tempfile.TemporaryDirectory(prefix="splitbrain-sub-") as tmp:  # gone after the session
        try:
            path = component_file(Path(sub) if sub else lab.component_path, lab, Path(tmp))
        except SubmissionError as e:
            pytest.fail(str(e), pytrace=False)
        yield path


@pytest.fixture(scope="session")
def services(lab):
    return ensure_up(lab.services)


@pytest.fixture
def ns(services):
    space = open_namespace(services)
    yield space
    try:
        space.drop()
    except Exception:  # noqa: BLE001 - dropping is best effort; the next test has its own
        pass


@pytest.fixture
def history(request: pytest.FixtureRequest):
    h = History()
    ctx = ctxmod.current()
    ctx.histories.append(h)
    yield h
    path = ctx.artifact(".history.jsonl")
    if path is not None and len(h):
        h.to_jsonl(path)
        request.node.user_properties.append(("history", str(path)))


@pytest.fixture
def spawn(request: pytest.FixtureRequest, lab, component, services, ns, history, seed):
    """``spawn(name, component=None, resources=None, limits=None, env=None, record=True)`` starts
    a sandboxed worker on the submission's component with this test's namespace and history; it
    can build the lab's ``Ref("rig.x:make")`` helpers."""
    from splitbrain.sandbox import Limits
    from splitbrain.sandbox import spawn as sandbox_spawn
    from splitbrain.sandbox.hide import hidden_paths
    workers = []
    ctx = ctxmod.current()
    base = resources_of(ns, services)
    hide = hidden_paths(lab.root, (Path(request.config._sb_artifacts),))  # type: ignore[attr-defined]

    def factory(name: str = "w1", component_path=None, resources: dict | None = None,
                limits=None, env: dict | None = None, record: bool = True, **kw):
        w = sandbox_spawn(component_path or component, name, {**base, **(resources or {})},
                          limits or Limits(memory_mb=lab.memory_mb,
                                                  call_timeout_s=lab.call_timeout_s),
                          history=history if record else None, env=env, seed=seed,
                          log_dir=ctx.artifact("-logs"),
                          **{"module": lab.module_name, "wait": False,
                             "rig": lab.rig_dir if (lab.rig_dir / "__init__.py").is_file()
                             else None, "hide": hide, **kw})
        workers.append(w)
        return w

    yield factory
    for w in workers:
        w.close()


@pytest.fixture
def proxy(services, ns, seed):
    """``proxy("redis"|"postgres")`` puts a FaultProxy in front of the service; ``handle.url`` is
    this test's namespace URL (the restricted user) through the proxy, ``handle.resources`` the
    same for ``spawn(resources=...)``. Inject its faults through the nemesis:
    ``nemesis.inject("partition", px)``."""
    from splitbrain.grading.proxies import ServiceProxy
    made = []
    test_ns = ns

    def factory(service: str, ns=None):
        p = ServiceProxy(service, services, ns or test_ns, seed + len(made))
        made.append(p)
        return p

    yield factory
    for p in made:
        p.close()


@pytest.fixture
def nemesis(history, seed, spawn, proxy):
    """The one route for faults: ``f = nemesis.inject("pause", worker)`` ... ``f.heal()``,
    ``with nemesis.fault("partition", px): ...``, ``nemesis.run(schedule)`` (on the wall clock)
    or ``nemesis.run(schedule, pace=pace)`` (on the workload's ``pace.step()``s); each start and
    end is recorded in the test's history. Set up after ``spawn`` and ``proxy``, so at teardown
    every fault heals before the workers and proxies go."""
    from splitbrain.faults import Nemesis
    n = Nemesis(history=history, seed=seed)
    yield n
    n.heal_all()


# -- the per-test clock and the results ----------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    faults = item.get_closest_marker("faults")
    if faults:
        from splitbrain.faults.registry import FAULTS
        unknown = [n for n in faults.args if n not in FAULTS]
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.faults names {unknown}, which the fault registry "
                f"does not know; known: {', '.join(sorted(FAULTS))} (a lab adds its own in "
                f"rig/faults.py)")
    hints: tuple[str, ...] = ()
    slug = ""
    try:
        lab_info = _lab_from_items(item.config, [Path(str(item.path))])
        hints, slug = lab_info.hints, lab_info.slug
    except Exception:  # noqa: BLE001 - the lab fixture reports this properly
        pass
    ctxmod.set_current(ctxmod.TestContext(
        nodeid=item.nodeid, seed=item.config.getoption("--seed"), lab_slug=slug,
        artifacts=item.config._sb_artifacts, hints=hints,  # type: ignore[attr-defined]
        faults=tuple(faults.args) if faults else (), user_properties=item.user_properties))


def _timeout_for(item: pytest.Item) -> float:
    try:
        return float(_lab_from_items(item.config, [Path(str(item.path))]).test_timeout_s)
    except Exception:  # noqa: BLE001
        return 60.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    use_alarm = threading.current_thread() is threading.main_thread()
    limit = _timeout_for(item)
    if use_alarm:
        def on_alarm(signum, frame):
            raise TestTimeout(f"the test ran past its {limit:g} s limit (test_timeout_s)")
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    results = item.config._sb_results  # type: ignore[attr-defined]
    points = item.get_closest_marker("points")
    entry = results.setdefault(item.nodeid, {
        "name": item.name, "nodeid": item.nodeid,
        "max_points": float(points.args[0]) if points and points.args else 1.0,
        "hidden": item.get_closest_marker("hidden") is not None,
        "status": "passed", "message": "", "faults": [], "history": None, "anomalies": [],
        "picture": None, "duration_s": 0.0})
    entry["duration_s"] += report.duration
    if report.when == "call" or (report.when == "setup" and not report.passed):
        status, message = classify(report, call)
        if status in ("failed", "error", "timeout") and "services" in getattr(item, "funcargs", {}):
            down = services_down(item.funcargs["services"])
            if down:
                status, message = "infra_error", (f"infrastructure: {', '.join(down)} stopped "
                                                  f"answering during this test\n{message}")
        if entry["status"] == "passed" or report.when == "call":
            entry["status"], entry["message"] = status, message
    elif report.when == "teardown" and report.failed and entry["status"] == "passed":
        entry["status"], entry["message"] = classify(report, call)
    props = dict(item.user_properties)
    entry["history"] = props.get("history", entry["history"])
    entry["picture"] = props.get("picture", entry["picture"])
    entry["anomalies"] = sorted({k for key, v in item.user_properties if key == "anomalies"
                                 for k in v})
    if report.when == "teardown":
        entry["faults"] = faults_of(item, ctxmod.current().histories)
        missing = undeclared_injection(item, ctxmod.current().histories)
        if missing and entry["status"] == "passed":
            entry["status"] = "error"
            entry["message"] = (f"this test declares faults {missing} that it never injected "
                                f"through the nemesis: the test is wrong, not the submission")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--sb-results")
    if not path:
        return
    data = {"lab": getattr(session.config, "_sb_lab", None) or session.config.getoption("--lab"),
            "submission": session.config.getoption("--submission"),
            "seed": session.config.getoption("--seed"),
            "collected": session.testscollected,
            "tests": list(session.config._sb_results.values())}  # type: ignore[attr-defined]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
