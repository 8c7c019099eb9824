"""Fixtures for the kit's own tests.

``services``: the shared Postgres, Redis and Kafka for the session — the embedded backend unless
URLs are configured (SPLITBRAIN_POSTGRES_URL, ...). At the end of the session only what this
session started is stopped, and only when no other live process still holds it.
``ns``: a fresh namespace per test (own database and role, Redis ACL user, topic names).
``isolated_home``: a private state directory, for tests that start and stop shared services."""
from __future__ import annotations

import pytest

from splitbrain.services import open_namespace, using

# sample projects that tests grade in subprocesses; their test files are not the kit's tests
collect_ignore = ["fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab", action="append", default=[], metavar="LAB",
                     help="run only the tests of this shipped lab (number or name; repeatable): "
                          "its proof, variants, selftests and notebook")
    parser.addoption("--no-labs", action="store_true",
                     help="leave out every test parametrized with a shipped lab (the kit alone)")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """``--lab 06``: keep the tests parametrized with that lab (or a variant of it);
    ``--no-labs``: keep the others. A test that starts the Kafka-compatible broker of the claims
    (each join waits half a session timeout) belongs to the slow lane."""
    for item in items:
        if "tansu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    wanted = config.getoption("--lab")
    no_labs = config.getoption("--no-labs")
    if not wanted and not no_labs:
        return
    from splitbrain.lab import LabError, LabInfo, find_lab
    try:
        slugs = {find_lab(name).slug for name in wanted}
    except LabError as e:
        raise pytest.UsageError(str(e)) from None

    def lab_of(item) -> str | None:
        for value in getattr(getattr(item, "callspec", None), "params", {}).values():
            for v in (value if isinstance(value, tuple) else (value,)):
                if isinstance(v, LabInfo):
                    return v.slug
        return None

    if no_labs:
        keep = [i for i in items if lab_of(i) is None]
    else:
        keep = [i for i in items if lab_of(i) in slugs]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.fixture(scope="session")
def services():
    with using() as ep:
        yield ep


@pytest.fixture
def ns(services):
    space = open_namespace(services)
    yield space
    space.drop()


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """A state dir of its own: `up`/`down` here never touch the session's services. Whatever
    was started in it is stopped and its data deleted at the end."""
    from splitbrain.services import down
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SPLITBRAIN_HOME", str(home))
    for var in ("SPLITBRAIN_BACKEND", "SPLITBRAIN_POSTGRES_URL", "SPLITBRAIN_REDIS_URL",
                "SPLITBRAIN_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPLITBRAIN_CONFIG", str(home / "splitbrain.toml"))
    yield home
    down(purge=True)


@pytest.fixture(scope="session")
def grading_env(services, tmp_path_factory):
    """Gradings run in subprocesses: point them at this session's services (through the URL
    variables) and give them a state dir of their own, for the whole session."""
    mp = pytest.MonkeyPatch()
    for var, value in (("SPLITBRAIN_POSTGRES_URL", services.postgres_url),
                       ("SPLITBRAIN_REDIS_URL", services.redis_url),
                       ("SPLITBRAIN_KAFKA_BOOTSTRAP", services.kafka_bootstrap)):
        if value:
            mp.setenv(var, value)
    mp.setenv("SPLITBRAIN_HOME", str(tmp_path_factory.mktemp("grading-home")))
    yield services
    mp.undo()
