"""Errors a learner or instructor can act on. Each message is one paragraph: what went wrong,
where to look, and the one thing to do about it."""
from __future__ import annotations


class ServiceError(RuntimeError):
    """Base class: a service could not be started, found, or stopped."""


class BinaryMissing(ServiceError):
    def __init__(self, service: str, binary: str, fix: str):
        self.service, self.binary, self.fix = service, binary, fix
        super().__init__(
            f"{service} cannot start: the program `{binary}` was not found on this machine. "
            f"Fix: {fix}")


class PortInUse(ServiceError):
    def __init__(self, service: str, port: int):
        self.service, self.port = service, port
        super().__init__(
            f"{service} cannot listen on 127.0.0.1:{port}: another program already uses that port. "
            f"Stop that program (`ss -ltnp 'sport = :{port}'` or `lsof -i :{port}` shows which one), "
            f"or leave the port unset so the kit picks a free one.")


def redact_urls(text: str) -> str:
    """Passwords in URLs (``scheme://user:secret@host``) replaced by ***."""
    import re
    return re.sub(r"(://[^:/@\s]*:)[^@\s]+@", r"\1***@", text)


class ServerDied(ServiceError):
    def __init__(self, service: str, log_path: str, last_lines: str, why: str = "exited"):
        last_lines = redact_urls(last_lines)
        self.service, self.log_path, self.last_lines = service, log_path, last_lines
        body = last_lines.rstrip() or "(the log is empty)"
        super().__init__(
            f"{service} {why} while starting. The last lines of its log:\n{body}\n"
            f"The full log is {log_path}. Fix what the log names (a full disk, a bad setting, "
            f"a port taken by another program), then run `splitbrain up` again; "
            f"`splitbrain doctor` checks the usual causes.")


class StaleState(ServiceError):
    """A state file names processes that are gone or are no longer the kit's (a crashed run)."""

    def __init__(self, path: str, detail: str):
        self.path = path
        super().__init__(
            f"The service state file {path} is stale: {detail}. The kit cleaned it up and did not "
            f"signal any process it did not start; run `splitbrain up` to start fresh services.")


class DockerUnavailable(ServiceError):
    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(
            f"The docker backend was asked for, but no Docker engine answers ({detail}). Start "
            f"Docker Desktop or the docker service (`sudo systemctl start docker`) and check with "
            f"`docker info`; or use the default embedded backend, which needs no Docker: "
            f"`splitbrain up --backend embedded`.")


class NotConfigured(ServiceError):
    def __init__(self, service: str, env_var: str):
        self.service, self.env_var = service, env_var
        super().__init__(
            f"The external backend was asked for {service}, but no URL is configured. Set "
            f"{env_var} (or add it under [services] in splitbrain.toml), or use the embedded "
            f"backend: `splitbrain up --backend embedded`.")


class Unreachable(ServiceError):
    def __init__(self, service: str, url: str, detail: str):
        self.service, self.url = service, url
        super().__init__(
            f"{service} at {url} does not answer ({detail}). Check that the server runs and the "
            f"URL is right; or unset {_url_var(service)} (and remove "
            f"{service} from splitbrain.toml) and run `splitbrain up` to use the kit's embedded "
            f"server.")


def _url_var(service: str) -> str:
    from .external import ENV
    return ENV.get(service, "its URL variable")


class BadInput(ServiceError, ValueError):
    """A caller passed a service name, backend or option the kit does not know."""
