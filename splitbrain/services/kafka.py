"""Kafka: the tansu broker (Kafka wire protocol, in-memory storage) as a child process.

Known tansu defects the kit works around: every JoinGroup waits session.timeout.ms/2, and at
least a second (the kit's consumers use session.timeout.ms=6000; lab 10's, 1000); a group can wedge when its last members leave together (unique group
ids per test); the high watermark is wrong after a multi-record batch (count records, never
trust watermarks); read_committed still shows aborted transactions; memory storage loses all
topics and offsets on restart."""
from __future__ import annotations

import signal
from pathlib import Path

from .binaries import tansu
from .server import Server

CONSUMER_DEFAULTS = {"session.timeout.ms": 6000}


class KafkaServer(Server):
    service = "Kafka"
    stop_signal = signal.SIGINT
    port_taken_marks = ("Address already in use", "AddrInUse")

    def __init__(self, port: int, log_path: Path, *, advertise_port: int | None = None,
                 storage: str = "memory://tansu/", detached: bool = False, auto_port: bool = False):
        super().__init__(port, log_path, detached=detached, auto_port=auto_port)
        self.advertise_port = advertise_port
        self.storage = storage

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.bootstrap

    def argv(self) -> list[str]:
        adv = self.advertise_port or self.port
        return [tansu(), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{adv}",
                "--storage-engine", self.storage]

    def record(self) -> dict:
        return {**super().record(), "advertise_port": self.advertise_port, "storage": self.storage}

    @classmethod
    def from_record(cls, rec: dict) -> "KafkaServer":
        s = cls(rec["port"], Path(rec["log"]), advertise_port=rec.get("advertise_port"),
                storage=rec.get("storage", "memory://tansu/"), detached=True)
        s.pid, s.started = rec.get("pid"), rec.get("started")
        return s
