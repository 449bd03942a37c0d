"""Serve the emulator: in a background thread (tests) or in the foreground (`python -m msemulator`).

Cheroot, not Werkzeug's development server: Microsoft's front doors keep HTTP/1.1 connections alive
and serve many clients at once, and the portal's pooled `requests` sessions are built for that.
Werkzeug's server closes the connection after every response, so connection reuse, idle
timeouts and stale pooled connections were never exercised (docs/decisions/020). Cheroot parks
idle keep-alive connections in a selector, so they hold no worker thread, and closes those idle
longer than ``keepalive_timeout``, as a front door does. Gunicorn, already a portal dependency,
cannot run inside a test process's thread (its arbiter forks workers and owns signals), and the
tests and benchmarks need the emulator's state in their own process.
"""

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .app import CLOSE_KEY, IDLE_KEY, EmulatorApp
from .config import PartnerConfig
from .tls import ensure_certificates

# Idle keep-alive connections are closed after this many seconds (Azure Front Door keeps an idle
# client connection for 90 s; a shorter default keeps a test run's sockets few). Clients that
# check a pooled connection before reuse (urllib3 does) notice the close and reconnect.
KEEPALIVE_TIMEOUT = 30
WORKER_THREADS = 32
KEEPALIVE_CONNECTIONS = 1000


class Gateway(wsgi.Gateway_10):
    """Tells the app about the connection a request arrived on: how to end it without an answer (for
    fault injection) and how long it idled since its previous response (None on a new connection)."""

    def get_environ(self):
        environ = super().get_environ()
        conn = self.req.conn
        environ[CLOSE_KEY] = lambda *, reset=False: close_connection(conn, reset=reset)
        finished = getattr(conn, "msemulator_last_response", None)
        environ[IDLE_KEY] = None if finished is None else max(0.0, time.monotonic() - finished)
        return environ

    def respond(self):
        try:
            super().respond()
        finally:
            self.req.conn.msemulator_last_response = time.monotonic()


def close_connection(conn, *, reset: bool) -> None:
    """End a connection now. FIN: shut the socket down (the server closes it afterwards as usual).
    RST: linger on with timeout 0 and close the descriptor here; the server's connection object gets
    an unconnected placeholder, whose shutdown fails harmlessly (ENOTCONN) when it closes it, so the
    server never closes a descriptor number another connection may have been given since."""
    sock = conn.socket
    with contextlib.suppress(OSError, ValueError):
        if not reset:
            sock.shutdown(socket.SHUT_RDWR)
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(sock.detach())
        conn.socket = socket.socket()


class TLSAdapter(BuiltinSSLAdapter):
    def __init__(self, certificate: str, private_key: str):
        super().__init__(certificate, private_key)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2


def make_server(app: EmulatorApp, host: str, port: int, ssl_paths=None, *,
                keepalive_timeout: float = KEEPALIVE_TIMEOUT, threads: int = WORKER_THREADS) -> wsgi.Server:
    server = wsgi.Server((host, port), app, numthreads=threads, server_name="msemulator",
                         timeout=keepalive_timeout, request_queue_size=128, shutdown_timeout=2)
    server.gateway = Gateway
    # Keep-alive sockets that idle past the timeout are swept this often.
    server.expiration_interval = min(0.5, keepalive_timeout)
    # Cheroot keeps at most 10 idle connections by default and answers "Connection: close" past that,
    # so a busy test session or load run would silently lose keep-alive. A front door keeps thousands.
    server.keep_alive_conn_limit = KEEPALIVE_CONNECTIONS
    if ssl_paths is not None:
        server.ssl_adapter = TLSAdapter(ssl_paths.cert, ssl_paths.key)
    return server


@dataclass
class EmulatorHandle:
    base_url: str
    ca_path: str | None
    app: EmulatorApp
    server: wsgi.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)
        self.app.state.close()


def start_in_thread(port: int = 0, state_path: str = "var/msemulator.sqlite3", tls: bool = True,
                    host: str = "127.0.0.1", cert_dir: str | None = None,
                    partner: PartnerConfig | None = None,
                    keepalive_timeout: float = KEEPALIVE_TIMEOUT) -> EmulatorHandle:
    app = EmulatorApp(state_path, partner)
    paths = ensure_certificates(cert_dir or os.path.dirname(os.path.abspath(state_path))) if tls else None
    server = make_server(app, host, port, paths, keepalive_timeout=keepalive_timeout)
    server.prepare()  # binds, so the port is known before the thread starts
    thread = threading.Thread(target=server.serve, name="msemulator", daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    return EmulatorHandle(base_url=f"{scheme}://{host}:{server.bind_addr[1]}",
                          ca_path=paths.ca if paths else None, app=app, server=server, thread=thread)
