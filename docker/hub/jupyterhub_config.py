# JupyterHub for a Split Brain workshop on one machine: every learner gets a notebook server of
# their own, and all of them share one set of services (the kit's *external* backend: one
# PostgreSQL and one Redis for the room). The kit keeps learners apart on those servers with
# namespaces: every test and every notebook run gets its own database and login role, and its
# own Redis ACL user limited to its key prefix (splitbrain/services/namespace.py).
#
# Start it from the checkout, with the kit and JupyterHub installed in one environment
# (pip install -e '.[hub]') and configurable-http-proxy on PATH (npm install -g
# configurable-http-proxy):
#
#     export SPLITBRAIN_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres
#     export SPLITBRAIN_REDIS_URL=redis://127.0.0.1:6379/0
#     jupyterhub -f docker/hub/jupyterhub_config.py
#
# Two modes, chosen by the environment of the hub process:
#
# * SPLITBRAIN_HUB_DEMO_PASSWORD set: the mode tests/test_hub.py runs. Any user name logs in
#   with that one shared password (DummyAuthenticator), and every learner's server runs as the
#   hub's own OS user in a home folder of its own (SimpleLocalProcessSpawner). Learners are
#   kept apart on the shared services, but NOT on this machine: they could read each other's
#   files. Fine for a test or a room of trusted colleagues; not for a class.
# * unset (the default): learners log in with their OS accounts (PAMAuthenticator) and each
#   server runs as that account (LocalProcessSpawner; the hub must run as root). That is the
#   shape of a real one-machine room; it is NOT exercised by the tests. For a room on
#   containers, see docker/hub/Dockerfile.singleuser (Zero to JupyterHub on Kubernetes) or
#   dockerspawner's SystemUserSpawner.
#
# Every SPLITBRAIN_HUB_* variable below is read here only, when the hub starts.
import os
import sys

c = get_config()  # noqa: F821 (JupyterHub provides get_config when it loads this file)

# -- where the hub listens --------------------------------------------------------------------
# The public address (configurable-http-proxy), the hub's own API (which single-user servers
# call back to), and the proxy's control API. Loopback by default: put a TLS-terminating
# reverse proxy in front, or set SPLITBRAIN_HUB_IP=0.0.0.0 on a trusted network.
ip = os.environ.get("SPLITBRAIN_HUB_IP", "127.0.0.1")
c.JupyterHub.bind_url = f"http://{ip}:{os.environ.get('SPLITBRAIN_HUB_PORT', '8000')}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ.get('SPLITBRAIN_HUB_API_PORT', '8081')}"
c.ConfigurableHTTPProxy.api_url = \
    f"http://127.0.0.1:{os.environ.get('SPLITBRAIN_HUB_PROXY_API_PORT', '8001')}"
# The hub starts the proxy itself and stops it on exit (a proxy left from an earlier run on the
# same API port would be taken over, with its routes).
c.ConfigurableHTTPProxy.should_start = True

# -- the hub's own files -----------------------------------------------------------------------
# Its user database (SQLite), cookie secret and the proxy's pid file, in one folder (default:
# the folder the hub is started from).
state = os.path.abspath(os.environ.get("SPLITBRAIN_HUB_STATE", "."))
os.makedirs(state, exist_ok=True)
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "jupyterhub-proxy.pid")
# Stop the learners' servers when the hub stops, so nothing outlives a workshop by accident.
c.JupyterHub.cleanup_servers = True

# -- who may log in ------------------------------------------------------------------------------
demo_password = os.environ.get("SPLITBRAIN_HUB_DEMO_PASSWORD")
if demo_password:
    # One shared password for every user name: a test, or a demo. Never on a reachable port.
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = demo_password
    c.Authenticator.allow_all = True
else:
    # The machine's accounts. Name who may log in (or use allowed_groups) and who is admin.
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.allowed_users = set(filter(None, os.environ.get(
        "SPLITBRAIN_HUB_LEARNERS", "").split(",")))
admins = set(filter(None, os.environ.get("SPLITBRAIN_HUB_ADMINS", "").split(",")))
if admins:
    c.Authenticator.admin_users = admins

# -- a token for scripts (creating users, starting servers, grading) ------------------------------
# A service whose token may create users, start and stop their servers and reach them: the
# REST API (/hub/api/...) with "Authorization: token $SPLITBRAIN_HUB_API_TOKEN". Without the
# variable, no such service exists.
api_token = os.environ.get("SPLITBRAIN_HUB_API_TOKEN")
if api_token:
    c.JupyterHub.services = [{"name": "splitbrain-admin", "api_token": api_token}]
    c.JupyterHub.load_roles = [{
        "name": "splitbrain-admin",
        "scopes": ["admin:users", "admin:servers", "access:servers", "list:users"],
        "services": ["splitbrain-admin"],
    }]

# -- each learner's server -----------------------------------------------------------------------
if demo_password:
    c.JupyterHub.spawner_class = "simple"
    # Each user's home: notebooks, their copy of a lab, and the kit's state (below).
    homes = os.path.abspath(os.environ.get("SPLITBRAIN_HUB_HOMES", os.path.join(state, "homes")))
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(homes, "{username}")
else:
    c.JupyterHub.spawner_class = "localprocess"

# The single-user server from the hub's own Python environment, where the kit is installed.
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
if demo_password and os.getuid() == 0:
    # The demo spawner runs learners as the hub's user; Jupyter refuses root unless told.
    c.Spawner.args = ["--allow-root"]
c.Spawner.default_url = "/lab"
# A first start imports JupyterLab and the kit: give it time on a slow, busy machine.
c.Spawner.start_timeout = int(os.environ.get("SPLITBRAIN_HUB_START_TIMEOUT", "120"))
c.Spawner.http_timeout = int(os.environ.get("SPLITBRAIN_HUB_START_TIMEOUT", "120"))
# Size a learner for one grading at a time: about a core, a few worker processes (each capped
# at 512 MiB of address space) and the private servers some tests start. Local-process
# spawners enforce no limit; container spawners take c.Spawner.mem_limit / cpu_limit.


def _learner_home(spawner) -> str:
    home = getattr(spawner, "home_dir", "")
    if home:
        return home
    import pwd
    return pwd.getpwnam(spawner.user.name).pw_dir


def _learner_state(spawner) -> str:
    # The kit's per-user state (progress, hints seen, logs): in the learner's home, never in
    # the shared checkout, so one learner's attempts are not counted as another's.
    return os.path.join(_learner_home(spawner), ".splitbrain")


# The shared services, passed on from the hub's environment (one set for the whole room), and
# a state folder per learner. The URLs must carry administrator rights: the kit creates each
# namespace's database, role and Redis ACL user with them, and learner code only ever receives
# the namespace's restricted URLs. Lab 02 always uses a private broker, so a Kafka is optional.
environment = {"SPLITBRAIN_HOME": _learner_state}
for var in ("SPLITBRAIN_POSTGRES_URL", "SPLITBRAIN_REDIS_URL", "SPLITBRAIN_KAFKA_BOOTSTRAP",
            "SPLITBRAIN_ROOT", "SPLITBRAIN_RUNTIME_DIR"):
    if os.environ.get(var):
        environment[var] = os.environ[var]
c.Spawner.environment = environment
# PATH reaches the servers through env_keep (the default list), so `splitbrain` and
# redis-server resolve as they do for the hub.
