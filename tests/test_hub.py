"""A workshop hub, proven: a real JupyterHub (docker/hub/jupyterhub_config.py, demo mode) serves
two learners, each in a notebook server of their own, against one shared PostgreSQL and Redis
(the kit's external backend). Through the hub's REST API the test creates alice and bob, starts
their servers and, in a kernel of each server (Jupyter REST API + kernel websocket), grades a
copy of lab 01 with `python -m splitbrain check`, writes a Redis key and a Postgres row in a
namespace of its own, then lists everything it can see: neither ever sees the other's.

The demo mode runs every learner as the hub's own OS user (SimpleLocalProcessSpawner): learners
are apart on the shared services, not on the machine. Real OS users, containers, Kubernetes and
OAuth are not tested here (docs/workshops.md says so)."""
from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docker" / "hub" / "jupyterhub_config.py"
LAB = "01-fencing-locks"
MACHINE_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_REDIS = "redis://127.0.0.1:6379/0"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None,
                       reason="configurable-http-proxy is not on PATH "
                              "(npm install -g configurable-http-proxy; .ci/run does)"),
    pytest.mark.skipif(importlib.util.find_spec("jupyterhub") is None,
                       reason="jupyterhub is not installed (pip install -e '.[hub]'; the test "
                              "extra includes it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine_services() -> tuple[str, str] | None:
    """The machine's own Postgres (trust) and Redis, as a course server would run them."""
    import psycopg
    import redis
    try:
        with psycopg.connect(MACHINE_PG, connect_timeout=3) as c:
            if not c.execute("select rolsuper from pg_roles where rolname = current_user"
                             ).fetchone()[0]:
                return None
        r = redis.Redis.from_url(MACHINE_REDIS, socket_timeout=3)
        try:
            r.execute_command("ACL", "WHOAMI")
        finally:
            r.close()
    except Exception:
        return None
    return MACHINE_PG, MACHINE_REDIS


@pytest.fixture
def shared_services(request) -> tuple[str, str]:
    """One Postgres and one Redis for the whole room: the machine's when it runs them (CI
    does), else the kit's test servers, which the hub's learners reach as external ones."""
    if os.environ.get("SPLITBRAIN_POSTGRES_URL") and os.environ.get("SPLITBRAIN_REDIS_URL"):
        return os.environ["SPLITBRAIN_POSTGRES_URL"], os.environ["SPLITBRAIN_REDIS_URL"]
    found = _machine_services()
    if found:
        return found
    ep = request.getfixturevalue("services")
    return ep.postgres_url, ep.redis_url


class Hub:
    """The REST API of a running hub, as the admin service."""

    def __init__(self, url: str, token: str) -> None:
        import requests
        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, ok=(200, 201, 202, 204), **kw):
        r = self.session.request(method, f"{self.url}/hub/api{path}", timeout=30, **kw)
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def wait_ready(self, user: str, deadline: float, hub_log: Path) -> None:
        while time.monotonic() < deadline:
            server = (self.api("GET", f"/users/{user}").get("servers") or {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        pytest.fail(f"{user}'s server not ready in time; hub log:\n{hub_log.read_text()[-4000:]}")

    def run(self, user: str, kernel: str, code: str, timeout: float = 240) -> str:
        """Execute ``code`` in a kernel of ``user``'s server over the kernel websocket; return
        what it printed (an error in the cell fails the test with its traceback)."""
        import websocket
        ws_url = self.url.replace("http://", "ws://", 1)
        ws = websocket.create_connection(
            f"{ws_url}/user/{user}/api/kernels/{kernel}/channels",
            header=[f"Authorization: {self.session.headers['Authorization']}"],
            timeout=timeout)
        msg_id = uuid.uuid4().hex
        try:
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex,
                           "msg_type": "execute_request", "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False,
                            "stop_on_error": True}}))
            out: list[str] = []
            while True:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    pytest.fail(f"{user}'s cell raised {content['ename']}: {content['evalue']}\n"
                                + "\n".join(content["traceback"]) + "\n" + "".join(out))
                elif kind == "status" and content["execution_state"] == "idle":
                    return "".join(out)
        finally:
            ws.close()


def _last_json(text: str) -> dict:
    line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


# Run in each learner's kernel: grade the copy of lab 01 in the home folder with the kit's CLI,
# then open a namespace on the shared servers (the external backend from the spawner's
# environment) and leave a Redis key and a Postgres row in it.
WORK = r"""
import json, os, subprocess, sys
check = subprocess.run([sys.executable, "-m", "splitbrain", "check", "01",
                        "--submission", "lock.py", "--json"],
                       capture_output=True, text=True, timeout=300)
try:
    verdict = json.loads(check.stdout)
except ValueError:
    verdict = {"unparsed": check.stdout[-2000:], "stderr": check.stderr[-3000:]}
import psycopg, redis
from splitbrain.services import ensure_up, open_namespace
ep = ensure_up(["postgres", "redis"])
ns = open_namespace(ep)
me = os.environ["JUPYTERHUB_USER"]
r = redis.Redis.from_url(ns.redis_url)
r.set(ns.key("owner"), me)
with psycopg.connect(ns.pg_url, autocommit=True) as c:
    c.execute("create table notebook_of_" + me + " (who text)")
    c.execute("insert into notebook_of_" + me + " values (%s)", (me,))
print(json.dumps({"user": me, "cwd": os.getcwd(), "server_pid": os.getppid(),
                  "home": os.environ["HOME"], "state": os.environ["SPLITBRAIN_HOME"],
                  "backends": ep.backends, "exit": check.returncode, "check": verdict,
                  "ns": ns.name, "prefix": ns.prefix, "redis_acl": ns.redis_acl,
                  "pg_url": ns.pg_url}))
"""

# Then, with the other learner's namespace name: list everything the learner's restricted
# credentials can see, and try the other's key and database head-on.
LOOK = r"""
other = %r
seen = {"keys": None, "scan": None, "tables": [], "rows": [], "other_key": None, "other_db": None}
try:
    seen["keys"] = sorted(k.decode() for k in r.keys("*"))
except redis.exceptions.NoPermissionError as e:
    seen["keys"] = "refused: " + str(e)
try:
    seen["scan"] = sorted(k.decode() for k in r.scan_iter(count=1000))
except redis.exceptions.NoPermissionError as e:
    seen["scan"] = "refused: " + str(e)
try:
    seen["other_key"] = r.get(other + ":owner")
except redis.exceptions.NoPermissionError as e:
    seen["other_key"] = "refused: " + str(e)
with psycopg.connect(ns.pg_url, autocommit=True) as c:
    seen["tables"] = [t for (t,) in c.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema') order by 1")]
    for t in seen["tables"]:
        seen["rows"] += [list(row) for row in c.execute("select * from " + t)]
try:
    psycopg.connect(ns.pg_url.rsplit("/", 1)[0] + "/" + other, connect_timeout=5).close()
    seen["other_db"] = "connected"
except psycopg.OperationalError as e:
    seen["other_db"] = "refused: " + " ".join(str(e).split())
print(json.dumps(seen, default=str))
"""

DROP = r"""
r.close()
ns.drop()
print(json.dumps({"dropped": ns.name}))
"""


def test_two_learners_on_one_hub_share_services_never_data(tmp_path, shared_services):
    pg_url, redis_url = shared_services
    port, token, password = _free_port(), secrets.token_hex(24), secrets.token_hex(8)
    state, homes = tmp_path / "hub", tmp_path / "homes"
    state.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPLITBRAIN_", "JUPYTERHUB_", "JPY_"))}
    env.update({
        "SPLITBRAIN_POSTGRES_URL": pg_url, "SPLITBRAIN_REDIS_URL": redis_url,
        "SPLITBRAIN_ROOT": str(ROOT),
        "SPLITBRAIN_HUB_PORT": str(port), "SPLITBRAIN_HUB_API_PORT": str(_free_port()),
        "SPLITBRAIN_HUB_PROXY_API_PORT": str(_free_port()),
        "SPLITBRAIN_HUB_STATE": str(state), "SPLITBRAIN_HUB_HOMES": str(homes),
        "SPLITBRAIN_HUB_DEMO_PASSWORD": password, "SPLITBRAIN_HUB_API_TOKEN": token,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    })
    # Each learner's copy of lab 01's component: alice has solved it, bob has the handout.
    for user, source in (("alice", ROOT / "solutions" / LAB / "lock.py"),
                         ("bob", ROOT / "labs" / LAB / "lock.py")):
        (homes / user).mkdir(parents=True)
        shutil.copy(source, homes / user / "lock.py")

    log = state / "hub.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        hub_proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
                                    cwd=state, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    hub = Hub(url, token)
    servers: list[int] = []
    try:
        import requests
        deadline = time.monotonic() + 90
        while True:
            assert hub_proc.poll() is None, f"the hub exited:\n{log.read_text()[-4000:]}"
            try:
                if requests.get(f"{url}/hub/api/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"hub never answered:\n{log.read_text()[-4000:]}"
            time.sleep(0.3)

        # The shared password logs a learner in; another does not.
        for pw, expect_in in ((password, True), ("wrong-" + password, False)):
            s = requests.Session()
            s.get(f"{url}/hub/login", timeout=10)
            r = s.post(f"{url}/hub/login?next=", timeout=10, allow_redirects=False,
                       data={"username": "carol", "password": pw,
                             "_xsrf": s.cookies.get("_xsrf", "")})
            logged_in = r.status_code == 302 and any(
                c.name.startswith(("jupyterhub-hub-login", "__Host-jupyterhub-hub-login"))
                for c in s.cookies)
            assert logged_in is expect_in, (pw == password, r.status_code, r.text[:300])

        hub.api("POST", "/users", json={"usernames": ["alice", "bob"], "admin": False})
        for user in ("alice", "bob"):
            hub.api("POST", f"/users/{user}/server")
        for user in ("alice", "bob"):
            hub.wait_ready(user, time.monotonic() + 150, log)
        kernels = {}
        for user in ("alice", "bob"):
            r = hub.session.post(f"{url}/user/{user}/api/kernels", json={"name": "python3"},
                                 timeout=60)
            assert r.status_code == 201, (user, r.status_code, r.text[:500])
            kernels[user] = r.json()["id"]

        # Both learners grade and write at the same time, on the same servers.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            work = dict(zip(kernels, pool.map(lambda u: _last_json(hub.run(u, kernels[u], WORK)),
                                              kernels)))
        servers += [w["server_pid"] for w in work.values()]
        for user, w in work.items():
            assert w["user"] == user and w["home"] == str(homes / user)
            assert w["state"] == str(homes / user / ".splitbrain")
            assert w["backends"] == {"postgres": "external", "redis": "external"}, w["backends"]
            assert w["redis_acl"], "the shared Redis refused ACL users: prefixes only"
            assert w["check"].get("graded") is True, (user, w["exit"], w["check"])
        alice, bob = work["alice"]["check"], work["bob"]["check"]
        assert work["alice"]["exit"] == 0 and alice["score"] == alice["max_score"], alice
        assert work["bob"]["exit"] == 1 and bob["score"] < bob["max_score"], bob
        # each learner's attempts are recorded in their own home, not in the checkout
        for user in ("alice", "bob"):
            assert any((homes / user / ".splitbrain").rglob("*")), user

        names = {u: work[u]["ns"] for u in work}
        others = {"alice": names["bob"], "bob": names["alice"]}
        views = {u: _last_json(hub.run(u, kernels[u], LOOK % others[u])) for u in kernels}
        for user, seen in views.items():
            mine, theirs = work[user]["prefix"], work[others_of(user)]["prefix"]
            # what the learner's credentials list: only its own key, or nothing at all
            for listing in (seen["keys"], seen["scan"]):
                if isinstance(listing, str):
                    assert listing.startswith("refused"), listing
                else:
                    assert not [k for k in listing if not k.startswith(mine)], (user, listing)
                    assert not [k for k in listing if k.startswith(theirs)], (user, listing)
            assert seen["tables"] == [f"public.notebook_of_{user}"], (user, seen["tables"])
            assert seen["rows"] == [[user]], (user, seen["rows"])
            assert str(seen["other_key"]).startswith("refused"), (user, seen["other_key"])
            assert seen["other_db"].startswith("refused") and \
                "does not have CONNECT privilege" in seen["other_db"], (user, seen["other_db"])
            listed = [seen[k] for k in ("keys", "scan", "tables", "rows")]
            assert others[user] not in json.dumps(listed), (user, listed)

        # The learners' namespaces go when they are done with them; the shared servers keep
        # nothing of theirs.
        import psycopg
        import redis
        for user in kernels:
            assert _last_json(hub.run(user, kernels[user], DROP)) == {"dropped": names[user]}
        with psycopg.connect(pg_url, autocommit=True) as c:
            left = {d for (d,) in c.execute("select datname from pg_database")}
        assert not left & set(names.values()), left & set(names.values())
        admin = redis.Redis.from_url(redis_url)
        try:
            assert not [k for n in names.values() for k in admin.scan_iter(match=f"{n}:*")]
            acl_users = {u.decode() if isinstance(u, bytes) else u for u in admin.acl_users()}
            assert not acl_users & set(names.values())
        finally:
            admin.close()

        for user in ("alice", "bob"):
            hub.api("DELETE", f"/users/{user}/server")
    finally:
        hub_proc.send_signal(signal.SIGTERM)
        try:
            hub_proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(hub_proc.pid, signal.SIGKILL)
            hub_proc.wait(10)
        for pid in servers:  # the learners' servers go with the hub (cleanup_servers)
            try:
                psutil.Process(pid).wait(20)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                psutil.Process(pid).kill()
                pytest.fail(f"a learner's server (pid {pid}) outlived the hub")
    assert time.monotonic() - started < 240, "the hub test should stay under about 3 minutes"


def others_of(user: str) -> str:
    return {"alice": "bob", "bob": "alice"}[user]
