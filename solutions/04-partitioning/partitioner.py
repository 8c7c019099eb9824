"""A key-value store spread over several Redis shards, with online rebalancing.

Solution. Three changes from the handout:

1. Routing uses a stable hash (BLAKE2b of the key's bytes), so every process, whatever its
   PYTHONHASHSEED, sends a key to the same shard.
2. Routing is a consistent-hash ring with virtual nodes: adding a shard takes over about 1/N of the
   keys (only from its neighbours on the ring), removing one hands over only the keys it held, and
   160 points per shard keep the shards within a few percent of an equal share.
3. Rebalancing is online: ``begin_rebalance`` raises an epoch fence on every shard, then publishes
   the target shard set. While it is in progress, a key whose owner changes is written to its new
   owner and read from the new owner first, then the old one; ``migrate`` copies the remaining
   keys with SETNX (a copy never overwrites a newer write); ``finish_rebalance`` raises the fence
   again, publishes the new shard set and only then deletes the copies left on the old owners.
   Every step is idempotent, so a migrator killed at any point is finished by calling
   ``rebalance`` again, from any process.

The fence is what makes a client with an out-of-date shard map harmless: every put and get runs
as a Lua script on the shard that checks the shard's fence against the epoch of the map the client
used, and refuses the operation if the map is stale. The client reloads the map and retries.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import time

import redis

__all__ = ["ShardedStore", "HashRing", "stable_hash"]

FENCE = "__fence"          # per-shard key holding the highest epoch announced to that shard
VNODES = 160               # points per shard on the ring
STALE_WAIT_S = 3.0         # how long a client waits for a fenced epoch to be published

# KEYS[1] fence, KEYS[2] the data key; ARGV[1] the client's epoch, ARGV[2] op, ARGV[3] value
_FENCED = """
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence > tonumber(ARGV[1]) then
  return redis.error_reply('STALE ' .. fence)
end
if ARGV[2] == 'set' then
  redis.call('SET', KEYS[2], ARGV[3])
  return 'OK'
end
return redis.call('GET', KEYS[2])
"""

# KEYS[1] fence; ARGV[1] epoch: raise the fence, never lower it
_RAISE = """
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return fence
"""


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process, on every machine, in every run."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Consistent hashing with virtual nodes: ``VNODES`` points per shard on a 64-bit ring."""

    def __init__(self, names, vnodes: int = VNODES) -> None:
        points = sorted((stable_hash(f"{name}#{i}"), name) for name in names for i in range(vnodes))
        if not points:
            raise ValueError("a hash ring needs at least one shard")
        self._hashes = [h for h, _ in points]
        self._names = [n for _, n in points]

    def owner(self, key: str) -> str:
        i = bisect.bisect_right(self._hashes, stable_hash(key)) % len(self._hashes)
        return self._names[i]


class StaleShardMap(Exception):
    def __init__(self, fence: int) -> None:
        super().__init__(f"shard map is older than epoch {fence}")
        self.fence = fence


class ShardedStore:
    """A key-value store over Redis shards. See the handout for the full contract."""

    def __init__(self, control_url: str, prefix: str, shards: dict[str, str]) -> None:
        if not shards:
            raise ValueError("ShardedStore needs at least one shard: shards={'s0': 'redis://...'}")
        self._control = redis.Redis.from_url(control_url, decode_responses=True,
                                             socket_timeout=5)
        self._key = f"{prefix}topology"
        self._clients: dict[str, redis.Redis] = {}
        self._scripts: dict[str, object] = {}
        self._map: dict | None = None
        initial = {"epoch": 1, "shards": dict(shards), "next": None}
        self._control.set(self._key, json.dumps(initial), nx=True)

    # -- the shard map ------------------------------------------------------------------------
    def _load(self) -> dict:
        raw = self._control.get(self._key)
        self._map = json.loads(raw)
        self._rings = {"cur": HashRing(self._map["shards"]),
                       "next": HashRing(self._map["next"]) if self._map["next"] else None}
        return self._map

    def _current(self) -> dict:
        return self._map if self._map is not None else self._load()

    def _shard(self, url: str) -> redis.Redis:
        if url not in self._clients:
            c = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
            self._clients[url] = c
            self._scripts[url] = c.register_script(_FENCED)   # EVALSHA, loaded on first use
        return self._clients[url]

    def _fenced(self, url: str, epoch: int, key: str, op: str, value: str = "") -> str | None:
        self._shard(url)
        try:
            return self._scripts[url](keys=[FENCE, key], args=[epoch, op, value])
        except redis.ResponseError as e:
            if str(e).startswith("STALE"):
                raise StaleShardMap(int(str(e).split()[1])) from None
            raise

    def _retrying(self, attempt):
        """Run ``attempt(map)``; on a stale map or a dead shard, reload the map and retry."""
        deadline = time.monotonic() + STALE_WAIT_S
        while True:
            m = self._current()
            try:
                return attempt(m)
            except StaleShardMap as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"shards are fenced at epoch {e.fence} but the shard map is still at "
                        f"epoch {self._map['epoch']}; a rebalance stopped halfway: run "
                        f"rebalance() again to finish it") from None
                if self._load()["epoch"] < e.fence:
                    time.sleep(0.005)
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                old = m["epoch"]
                if self._load()["epoch"] == old:
                    time.sleep(0.01)

    def _owners(self, key: str) -> tuple[str, str | None]:
        """(current owner, new owner while a rebalance moves this key, else None)."""
        cur = self._rings["cur"].owner(key)
        nxt = self._rings["next"].owner(key) if self._rings["next"] else None
        return cur, (nxt if nxt != cur else None)

    # -- data -----------------------------------------------------------------------------------
    def put(self, key: str, value: str) -> None:
        def attempt(m):
            cur, new = self._owners(key)
            url = m["next"][new] if new else m["shards"][cur]
            self._fenced(url, m["epoch"], key, "set", value)
        self._retrying(attempt)

    def get(self, key: str) -> str | None:
        def attempt(m):
            cur, new = self._owners(key)
            if new:
                found = self._fenced(m["next"][new], m["epoch"], key, "get")
                if found is not None:
                    return found
            return self._fenced(m["shards"][cur], m["epoch"], key, "get")
        return self._retrying(attempt)

    def shards(self) -> dict[str, str]:
        return dict(self._load()["shards"])

    # -- rebalancing ----------------------------------------------------------------------------
    def _raise_fences(self, urls, epoch: int) -> None:
        for url in sorted(set(urls)):
            self._shard(url).eval(_RAISE, 1, FENCE, epoch)

    def _publish(self, expect_epoch: int, new_map: dict) -> None:
        with self._control.pipeline() as p:
            p.watch(self._key)
            if json.loads(p.get(self._key))["epoch"] != expect_epoch:
                raise RuntimeError("the shard map changed during a rebalance step; retry it")
            p.multi()
            p.set(self._key, json.dumps(new_map))
            p.execute()
        self._load()

    def begin_rebalance(self, shards: dict[str, str]) -> None:
        if not shards:
            raise ValueError("begin_rebalance needs at least one shard")
        m = self._load()
        if m["next"] is not None:
            if m["next"] != shards:
                raise RuntimeError(f"a rebalance to {sorted(m['next'])} is in progress; "
                                   f"finish it before starting another")
            self._raise_fences([*m["shards"].values(), *shards.values()], m["epoch"])
            return
        if m["shards"] == shards:
            return
        epoch = m["epoch"] + 1
        # fence first: from here on no client with the old map can write anywhere
        self._raise_fences([*m["shards"].values(), *shards.values()], epoch)
        self._publish(m["epoch"], {"epoch": epoch, "shards": m["shards"], "next": dict(shards)})

    def migrate(self, limit: int | None = None) -> int:
        m = self._load()
        if m["next"] is None:
            return 0
        new_ring = self._rings["next"]
        copied = 0
        for name, url in sorted(m["shards"].items()):
            src = self._shard(url)
            for key in src.scan_iter(count=500):
                if key.startswith("__"):
                    continue
                owner = new_ring.owner(key)
                if owner == name:
                    continue
                value = src.get(key)
                if value is not None and self._shard(m["next"][owner]).set(key, value, nx=True):
                    copied += 1
                    if limit is not None and copied >= limit:
                        return copied
        return copied

    def finish_rebalance(self) -> None:
        m = self._load()
        old = m["shards"]
        if m["next"] is not None:
            while self.migrate():
                pass
            target, epoch = m["next"], m["epoch"] + 1
            self._raise_fences([*old.values(), *target.values()], epoch)
            self._publish(m["epoch"], {"epoch": epoch, "shards": target, "next": None})
        # Delete the copies old owners still hold. Safe now: every client either has the new map
        # or is refused by the fence. Run on every call, so a cut-over killed before this loop
        # is cleaned up by the next rebalance() instead of leaving stale copies that a later
        # move back to that shard would mistake for data.
        self._drop_unowned({**old, **self._map["shards"]}, HashRing(self._map["shards"]))

    def _drop_unowned(self, shards: dict[str, str], ring: HashRing) -> None:
        for name, url in sorted(shards.items()):
            src = self._shard(url)
            stale = [k for k in src.scan_iter(count=500)
                     if not k.startswith("__") and ring.owner(k) != name]
            for i in range(0, len(stale), 500):
                src.delete(*stale[i:i + 500])

    def rebalance(self, shards: dict[str, str]) -> None:
        self.begin_rebalance(shards)
        self.finish_rebalance()
