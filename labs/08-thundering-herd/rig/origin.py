"""Worker side of lab 08: the trusted helpers a cache worker builds with ``Ref("rig.origin:...")``.

* :func:`make` builds the worker's :class:`Origin`: the expensive query, a call of the Postgres
  function ``origin_fetch`` that the grader counts in its own table (``origin_calls``), whatever
  the component does around it.
* :func:`redis_client`: a ``redis.Redis`` with short socket timeouts and *no* retries of its own
  (redis-py retries three times by default): the retry policy is the component's to write.
* :func:`rng`: a ``random.Random`` seeded by the grader, so every jittered delay of a grading is
  the same on every run.

Only this file of the rig runs inside a worker; it reads nothing outside ``rig/``.
"""
from __future__ import annotations

import random
from typing import Any

REDIS_TIMEOUT_S = 0.25


class OriginDown(ConnectionError):
    """The origin did not answer: it is down (a ``ConnectionError``, so ``except ConnectionError``
    catches it)."""


class Origin:
    """``origin(key)`` runs the expensive query for ``key`` and returns its value (a string such as
    ``"k1@v3"``: the key and the version the source held), or raises :class:`OriginDown`. One call
    takes tens of milliseconds; every call is counted by the grader."""

    calls = 0           # calls made in this worker (read_loop stops at one)

    def __init__(self, pg_url: str, client: str) -> None:
        self._url, self.client = pg_url, client
        self._conn: Any = None

    def __call__(self, key: str) -> str:
        import psycopg
        Origin.calls += 1
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, autocommit=True)
        try:
            (value,) = self._conn.execute("SELECT origin_fetch(%s, %s)",
                                          (str(key), self.client)).fetchone()
        except psycopg.OperationalError as e:
            self._conn = None
            raise OriginDown(f"the origin did not answer: {e}") from None
        if value is None:
            raise OriginDown(f"the origin is down (key {key!r})")
        return value

    def __repr__(self) -> str:
        return f"Origin(client={self.client!r})"


def make(resources: dict, client: str = "?") -> Origin:
    """The worker's origin, its connection opened now (not in the first call it times)."""
    import psycopg
    origin = Origin(resources["pg_url"], client)
    origin._conn = psycopg.connect(origin._url, autocommit=True)
    return origin


def redis_client(resources: dict, timeout_s: float = REDIS_TIMEOUT_S) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    return redis.Redis.from_url(resources["redis_url"], socket_timeout=timeout_s,
                                socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


def rng(resources: dict, seed: int = 0) -> random.Random:
    return random.Random(seed)



def read_loop(cache: Any, keys: list[str], seconds: float, until_origin: bool = False,
              reads: int = 0, gap_s: float = 0.001) -> list[list]:
    """Call ``cache.get`` on ``keys`` (round-robin) for ``seconds``, inside the worker, a
    millisecond apart (``until_origin``: stop early, after the first get that called the
    origin; ``reads``: after that many gets). No round trip to the grader between two reads,
    so a key is asked for within a millisecond or two of expiring even on a busy machine.
    Returns every read as ``[key index, start, end, ok, value]``, times from ``time.time()``,
    ``value`` the error's ``{"error", "message"}`` when the get raised."""
    import time
    deadline = time.time() + seconds
    out: list[list] = []
    calls, i = Origin.calls, 0
    while time.time() < deadline:
        k = i % len(keys)
        i += 1
        t0 = time.time()
        try:
            value, ok = cache.get(keys[k]), True
        except Exception as e:  # noqa: BLE001 - the learner's code may raise anything
            value, ok = {"error": type(e).__name__, "message": str(e)}, False
        out.append([k, t0, time.time(), ok, value if isinstance(value, (str, dict)) or
                    value is None else repr(value)])
        if (until_origin and Origin.calls != calls) or len(out) == reads:
            break
        time.sleep(gap_s)
    return out
