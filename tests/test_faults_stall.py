"""The ``stall`` fault: a link lets its first N messages through and holds the next, so a test can
put a stall exactly between two round trips of a component, and go through every such point."""
import threading

import redis

from splitbrain.faults import Nemesis
from splitbrain.faults.proxy import FaultProxy
from splitbrain.history import History


def test_a_stall_holds_exactly_the_next_request_until_healed(ns):
    fp = FaultProxy("stall-redis")
    url = ns.redis_url
    host_port = url.rsplit("@", 1)[-1].split("/")[0]
    host, port = host_port.rsplit(":", 1)
    fp.start((host, int(port)))
    try:
        h = History()
        nemesis = Nemesis(h)
        client = redis.Redis.from_url(fp.url_for(url), socket_timeout=5)
        direct = redis.Redis.from_url(url)
        client.ping()                                   # one round trip before the stall
        stall = nemesis.inject("stall", fp, after=1)    # SET passes, INCR is held
        done = threading.Event()

        def two_round_trips():
            client.set(ns.key("lease"), "a")
            client.incr(ns.key("token"))
            done.set()

        t = threading.Thread(target=two_round_trips)
        t.start()
        assert stall.wait(timeout=5)                    # the moment: SET done, INCR held
        assert direct.get(ns.key("lease")) == b"a" and direct.get(ns.key("token")) is None
        assert not done.is_set()
        direct.incr(ns.key("token"))                    # someone else acts at that moment
        stall.heal()
        t.join(timeout=5)
        assert done.is_set() and direct.get(ns.key("token")) == b"2"
        assert [(e.f, e.value["phase"], e.value.get("after")) for e in h.faults()] == [
            ("stall", "start", 1), ("stall", "end", None)]
        never = nemesis.inject("stall", fp, after=5)    # more than the conversation needs
        client.get(ns.key("lease"))
        assert never.wait(timeout=0.2) is False
        never.heal()
    finally:
        fp.stop()
