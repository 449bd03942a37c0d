"""python -m msemulator --port 8443 --state var/msemulator.sqlite3 [--http]"""

import argparse
import os

from werkzeug.serving import run_simple

from .app import EmulatorApp
from .server import RequestHandler
from .tls import ensure_certificates


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m msemulator",
                                     description="Local emulator of Entra ID, Partner Center and Graph.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--state", default="var/msemulator.sqlite3", help="SQLite state file")
    parser.add_argument("--cert-dir", help="where the local CA and server certificate live "
                                           "(default: next to the state file)")
    parser.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS")
    args = parser.parse_args()
    app = EmulatorApp(args.state)
    ssl_context = None
    scheme = "http"
    if not args.http:
        paths = ensure_certificates(args.cert_dir or os.path.dirname(os.path.abspath(args.state)))
        ssl_context = (paths.cert, paths.key)
        scheme = "https"
        print(f"msemulator CA bundle: {paths.ca}")
    print(f"msemulator serving {scheme}://{args.host}:{args.port} "
          f"(partner tenant {app.partner.tenant_id}, client id {app.partner.client_id})")
    run_simple(args.host, args.port, app, threaded=True, request_handler=RequestHandler, ssl_context=ssl_context)


if __name__ == "__main__":
    main()
