"""Real MLflow stores for the tracking tests: one SQLite store and one `mlflow server` per session.

MLflow imports, SQLite migrations and server start-up cost seconds each, so both live for the session;
tests isolate themselves by experiment name and run directory instead.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_helpers import MLFLOW_BIN, MlflowServer, free_port


@pytest.fixture(scope="session")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A local SQLite store, migrated once for the session."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow_sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # creates the tables now, not inside a timed test
    return uri


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, sqlite_uri: str) -> Iterator[MlflowServer]:
    """A real server; its backend is the session's (already migrated) SQLite file, which saves a migration."""
    if not MLFLOW_BIN.exists():
        pytest.skip("the mlflow CLI is not installed in the virtualenv")
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"), sqlite_uri)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite stores put artifacts under ./mlruns of the cwd: keep them out of the repository."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


class CuttableLink:
    """A TCP forwarder to the server that can be cut and restored on the same port: from the client's side
    exactly a network outage (connections reset, then refused), without restarting the server."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):  # wakes the blocked accept() (close alone does not)
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def cuttable_link(mlflow_server: MlflowServer) -> Iterator[CuttableLink]:
    link = CuttableLink(mlflow_server.port)
    link.up()
    yield link
    link.cut()


@pytest.fixture
def closed_port_uri() -> str:
    """An http URI where nothing listens (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"
