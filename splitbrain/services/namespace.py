"""Per-test namespaces on shared servers: each test gets its own Postgres database owned by its
own restricted role, its own Redis ACL user limited to its key prefix, and unique Kafka topic and
group names, so parallel gradings never see each other's data.

Learner code only ever receives ``ns.pg_url`` / ``ns.redis_url`` (the restricted ones)."""
from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass, field

from . import pg_namespace
from .pg_namespace import _with_credentials

# Key patterns do not filter SCAN or RANDOMKEY (KEYS is in @dangerous): they would list other
# namespaces' key names, so a namespace's user may not run them.
REDIS_RULES = ["+@all", "-@admin", "-@dangerous", "-scan", "-randomkey"]

_lock = threading.Lock()
_admin_redis: dict[str, object] = {}


def _redis_admin(url: str):
    import redis
    c = _admin_redis.get(url)
    if c is None:
        c = redis.Redis.from_url(url, socket_timeout=10)
        _admin_redis[url] = c
    return c


@dataclass
class Namespace:
    """One test's world on the shared servers. ``pg_admin_url`` is for the grader only."""

    name: str
    prefix: str
    pg_url: str | None = None
    pg_admin_url: str | None = None
    redis_url: str | None = None
    redis_admin_url: str | None = None
    kafka_bootstrap: str | None = None
    redis_acl: bool = False
    redis_acl_reason: str | None = None
    topics: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    _server_pg_url: str | None = field(default=None, repr=False)
    dropped: bool = False

    def key(self, name: str) -> str:
        """A Redis key inside this namespace (the ACL user may touch only these)."""
        return f"{self.prefix}{name}"

    def topic(self, name: str) -> str:
        t = f"{self.name}.{name}"
        self.topics.add(t)
        return t

    def group(self, name: str) -> str:
        g = f"{self.name}.{name}"
        self.groups.add(g)
        return g

    @property
    def pg_role(self) -> str | None:
        """The learner's Postgres role, or None where the learner's URL is the admin's own (a
        backend without per-test roles): the role a lab grants its tables to."""
        from psycopg.conninfo import conninfo_to_dict
        if not self.pg_url or not self.pg_admin_url:
            return None
        role = conninfo_to_dict(self.pg_url).get("user")
        return role if role and role != conninfo_to_dict(self.pg_admin_url).get("user") else None

    def apply_schema(self, sql_text: str, grant_all: bool = True) -> None:
        """Run a lab's schema (``sql_text``, idempotent DDL) as the admin in this namespace's
        database; with ``grant_all``, let the learner's role read and write every table and use
        every sequence in schema ``public`` (a lab that grants less does its own grants, to
        :attr:`pg_role`)."""
        import psycopg
        from psycopg import sql
        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            conn.execute(sql_text)
            role = self.pg_role
            if grant_all and role:
                r = sql.Identifier(role)
                conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN "
                                     "SCHEMA public TO {}").format(r))
                conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public "
                                     "TO {}").format(r))

    def drop(self) -> None:
        """Remove the database, role, keys, ACL user, topics and groups. Idempotent."""
        if self.dropped:
            return
        self.dropped = True
        if self._server_pg_url:
            pg_namespace.drop_db(self._server_pg_url, self.name)
        if self.redis_admin_url:
            import redis
            with _lock:
                r = _redis_admin(self.redis_admin_url)
            try:
                keys = list(r.scan_iter(match=f"{self.prefix}*", count=1000))
                for i in range(0, len(keys), 500):
                    r.unlink(*keys[i:i + 500])
                if self.redis_acl:
                    r.execute_command("ACL", "DELUSER", self.name)
            except (redis.ConnectionError, redis.AuthenticationError):
                pass  # the server was restarted: no persistence, keys and users went with it
        if self.kafka_bootstrap and (self.topics or self.groups):
            threading.Thread(target=_drop_kafka, daemon=True, name="splitbrain-kafka-drop",
                             args=(self.kafka_bootstrap, self.name, set(self.groups))).start()

    def __enter__(self) -> "Namespace":
        return self

    def __exit__(self, *exc) -> None:
        self.drop()


def _drop_kafka(bootstrap: str, name: str, groups: set[str]) -> None:
    """Best effort: delete this namespace's topics and groups (tansu keeps them in memory)."""
    try:
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
        md = admin.list_topics(timeout=2)
        topics = [t for t in md.topics if t.startswith(name + ".")]
        futs = list(admin.delete_topics(topics, operation_timeout=2).values()) if topics else []
        if groups:
            futs += list(admin.delete_consumer_groups(list(groups), request_timeout=2).values())
        for f in futs:
            try:
                f.result(timeout=3)
            except Exception:
                pass
    except Exception:
        pass


def open_namespace(ep, name: str | None = None) -> Namespace:
    """Make a fresh namespace on the servers of ``ep`` (an ``Endpoints``)."""
    name = name or f"sb_{secrets.token_hex(5)}"
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", name):
        from .errors import BadInput
        raise BadInput(f"namespace name {name!r} must be 1-41 lowercase letters, digits or _, "
                       f"not starting with a digit (it names a database, a role and a user)")
    ns = Namespace(name=name, prefix=f"{name}:", kafka_bootstrap=ep.kafka_bootstrap)
    try:
        if ep.postgres_url:
            if getattr(ep, "backends", {}).get("postgres") == "embedded":
                pg_namespace._local_servers.add(ep.postgres_url)
            pg_namespace.open_db(ns, ep.postgres_url)
        if ep.redis_url:
            _open_redis(ns, ep.redis_url)
    except BaseException:
        ns.drop()
        raise
    return ns


def _open_redis(ns: Namespace, admin_url: str) -> None:
    ns.redis_admin_url = admin_url
    password = secrets.token_urlsafe(12)
    with _lock:
        r = _redis_admin(admin_url)
    try:
        r.execute_command("ACL", "SETUSER", ns.name, "reset", "on", f">{password}",
                          f"~{ns.prefix}*", f"&{ns.prefix}*", *REDIS_RULES)
    except Exception as e:
        ns.redis_url, ns.redis_acl = admin_url, False
        ns.redis_acl_reason = f"the server refused ACL SETUSER ({e}); keys are separated by prefix only"
        return
    ns.redis_url = _with_credentials(admin_url, ns.name, password)
    ns.redis_acl = True
