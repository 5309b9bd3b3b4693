"""A real `hydracore serve --demo` on SQLite, on a free loopback port, for
the whole session; HYDRACORE_BIN names the binary (default: the debug build
under CARGO_TARGET_DIR or target/)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from hydracore import AgentClient, DashboardClient

REPO = Path(__file__).resolve().parents[3]


def binary() -> str:
    if os.environ.get("HYDRACORE_BIN"):
        return os.environ["HYDRACORE_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "debug" / "hydracore"
    if not path.exists():
        pytest.exit(f"no server binary at {path}: run `cargo build -p hydracore` or set HYDRACORE_BIN", 2)
    return str(path)


class Server:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hydracore-py-")
        env = {
            **os.environ,
            "HYDRACORE_DATABASE_URL": f"sqlite:{self.dir}/hydracore.db",
            # Webhooks to the tests' receivers on loopback, over http.
            "HYDRACORE_WEBHOOK_ALLOW_PRIVATE": "true",
            "HYDRACORE_WEBHOOK_POLL_INTERVAL": "200ms",
            "RUST_LOG": "warn",
        }
        self.process = subprocess.Popen(
            [binary(), "--json", "serve", "--demo", "--listen", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        stdout = self.process.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise RuntimeError("the server printed no demo credentials within 60 s") from None
        self.demo = json.loads(first)
        self.url: str = self.demo["base_url"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    running = Server()
    yield running
    running.stop()


@pytest.fixture
def agent(server: Server):
    with AgentClient(server.url, server.demo["proxy_key"], server.demo["instance_id"]) as client:
        yield client


@pytest.fixture
def admin(server: Server):
    with DashboardClient(server.url, token=server.demo["admin_jwt"]) as client:
        yield client


@pytest.fixture
def anyio_backend():
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
