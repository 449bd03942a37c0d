"""python -m msemulator --port 8443 --state var/msemulator.sqlite3 [--http] [--keepalive-timeout 30]"""

import argparse
import os

from .app import EmulatorApp
from .server import KEEPALIVE_TIMEOUT, WORKER_THREADS, make_server
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
    parser.add_argument("--keepalive-timeout", type=float, default=KEEPALIVE_TIMEOUT,
                        help="seconds an idle keep-alive connection is kept open")
    parser.add_argument("--threads", type=int, default=WORKER_THREADS, help="worker threads (requests in flight)")
    args = parser.parse_args()
    app = EmulatorApp(args.state)
    paths = None
    scheme = "http"
    if not args.http:
        paths = ensure_certificates(args.cert_dir or os.path.dirname(os.path.abspath(args.state)))
        scheme = "https"
        print(f"msemulator CA bundle: {paths.ca}")
    server = make_server(app, args.host, args.port, paths, keepalive_timeout=args.keepalive_timeout,
                         threads=args.threads)
    print(f"msemulator serving {scheme}://{args.host}:{args.port} with keep-alive "
          f"(partner tenant {app.partner.tenant_id}, client id {app.partner.client_id})", flush=True)
    server.safe_start()  # serves until Ctrl-C or SIGTERM


if __name__ == "__main__":
    main()
