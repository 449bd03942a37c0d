"""Run the emulator: in a background thread (tests) or in the foreground (`python -m msemulator`)."""

import os
import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import EmulatorApp
from .config import PartnerConfig
from .tls import ensure_certificates


class RequestHandler(WSGIRequestHandler):
    # Werkzeug writes the headers and the body separately and closes the connection after every
    # response; with Nagle's algorithm the body waits for the client's delayed ACK (~10 ms a request).
    disable_nagle_algorithm = True


@dataclass
class EmulatorHandle:
    base_url: str
    ca_path: str | None
    app: EmulatorApp
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.app.state.close()


def start_in_thread(port: int = 0, state_path: str = "var/msemulator.sqlite3", tls: bool = True,
                    host: str = "127.0.0.1", cert_dir: str | None = None,
                    partner: PartnerConfig | None = None) -> EmulatorHandle:
    app = EmulatorApp(state_path, partner)
    ssl_context = None
    ca_path = None
    if tls:
        paths = ensure_certificates(cert_dir or os.path.dirname(os.path.abspath(state_path)))
        ssl_context = (paths.cert, paths.key)
        ca_path = paths.ca
    server = make_server(host, port, app, threaded=True, request_handler=RequestHandler, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, name="msemulator", daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    return EmulatorHandle(base_url=f"{scheme}://{host}:{server.server_port}", ca_path=ca_path,
                          app=app, server=server, thread=thread)
