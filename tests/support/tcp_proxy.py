"""A loopback TCP forwarder a test can stop and start: an outage of one database connection, on demand.

Put in front of PostgreSQL (the recorder's alias or ETL_RECORDER_DATABASE_URL pointing at it), ``stop()`` closes
the listening socket and every forwarded connection, so new connections are refused at once and open ones
break, as when a database host goes away; ``start()`` listens on the same port again. Threads, no asyncio, so it
serves while the test thread blocks in ``dag.test()`` or waits for real Airflow processes.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from tests.support.airflow_processes import free_port

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``connections`` counts the connections it accepted."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, int(target_port))
        self.port = port or free_port()
        self.connections = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones (both directions), then wait for the threads."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------ internals
    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"tcp-proxy-{self.port}")
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: stopped
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update({client, upstream})
                self.connections += 1
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # Each socket is the source of exactly one pump: that pump closes it.
        with self._lock:
            self._sockets.discard(source)
        source.close()


@pytest.fixture(scope="module")
def recorder_proxy(django_db_setup, django_db_blocker):
    """The recorder's alias in this process (its own connection, as in every Airflow process) through a proxy
    the test stops and starts."""
    from django.db import connections

    from airflow_plugin.writeback import close_connection, setup

    setup()
    alias = connections.settings["etl_recorder"]
    address = (alias["HOST"], alias["PORT"])
    proxy = TcpProxy(alias["HOST"] or "127.0.0.1", int(alias["PORT"] or 5432)).start()
    close_connection()
    alias["HOST"], alias["PORT"] = "127.0.0.1", str(proxy.port)
    try:
        yield proxy
    finally:
        close_connection()
        alias["HOST"], alias["PORT"] = address
        proxy.stop()
