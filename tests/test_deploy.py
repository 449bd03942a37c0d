"""The production topology, tested without Docker.

- deploy/nginx.conf runs under Debian's nginx with a throwaway certificate: TLS 1.2 is refused,
  TLS 1.3 connects, plain HTTP redirects, HSTS is sent, the client cannot forge its address.
- docker-compose.yml is parsed and held to its promises: a service per queue, one beat with a
  lock, healthchecks and restart policies, secrets from the environment, pinned images.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """The stand-in for gunicorn: answers with the headers the proxy sent it."""

    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    if NGINX is None or OPENSSL is None:
        pytest.skip("needs nginx and openssl (apt install nginx-light openssl); CI installs them")
    tmp = tmp_path_factory.mktemp("nginx")
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(tmp / "privkey.pem"), "-out", str(tmp / "fullchain.pem")],
        check=True, capture_output=True,
    )
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    server_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for old, new in {
        "server web:8000;": f"server 127.0.0.1:{backend.server_address[1]};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/nginx/tls/": f"{tmp}/",
    }.items():
        assert old in server_conf, f"deploy/nginx.conf no longer has {old!r}; update this test with it"
        server_conf = server_conf.replace(old, new)
    (tmp / "server.conf").write_text(server_conf)
    (tmp / "nginx.conf").write_text(
        f"worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
        f" fastcgi_temp_path {tmp}/fastcgi;\n uwsgi_temp_path {tmp}/uwsgi;\n scgi_temp_path {tmp}/scgi;\n"
        f" include {tmp}/server.conf;\n}}\n"
    )
    nginx = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https_port), 0.5).close()
            break
        except OSError:
            if nginx.poll() is not None:
                pytest.fail(f"nginx did not start: {nginx.stdout.read().decode()}")
            time.sleep(0.1)
    yield {"http": http_port, "https": https_port}
    nginx.terminate()
    nginx.wait(10)
    backend.shutdown()


def s_client(port: int, version_flag: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", version_flag],
        input=b"", capture_output=True, timeout=20, check=False,
    )


def test_tls_1_2_is_refused(proxy):
    result = s_client(proxy["https"], "-tls1_2")
    assert result.returncode != 0
    assert b"alert protocol version" in result.stderr
    assert b"no peer certificate available" in result.stdout  # the handshake never got that far


def test_tls_1_3_connects(proxy):
    result = s_client(proxy["https"], "-tls1_3")
    assert result.returncode == 0, result.stderr.decode()
    assert b"TLSv1.3" in result.stdout


def _https_get(port: int, path: str = "/", headers: dict | None = None):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the throwaway certificate is self-signed
    request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        return urllib.request.urlopen(request, context=context, timeout=10)
    except urllib.error.HTTPError as error:
        return error


def test_https_sends_hsts_and_forwards_only_the_real_client_address(proxy):
    response = _https_get(proxy["https"], headers={"X-Forwarded-For": "6.6.6.6"})
    assert response.status == 200
    assert "max-age=63072000" in response.headers["Strict-Transport-Security"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    seen = json.loads(response.read())
    assert seen["x-forwarded-for"] == "127.0.0.1"  # overwritten, not appended to the forged value
    assert seen["x-forwarded-proto"] == "https"
    assert len(seen["x-request-id"]) == 32


def test_metrics_are_not_published_through_the_proxy(proxy):
    assert _https_get(proxy["https"], "/metrics").status == 404


def test_plain_http_redirects_to_https(proxy):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"http://127.0.0.1:{proxy['http']}/o/contoso/?x=1", timeout=10)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"] == "https://127.0.0.1/o/contoso/?x=1"


# --- docker-compose.yml ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_queue_has_its_own_scalable_worker(compose):
    queues = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if isinstance(command, list) and command[:4] == ["celery", "-A", "portal", "worker"]:
            queues[command[command.index("-Q") + 1]] = name
            assert "container_name" not in service, f"{name} must be scalable with --scale"
    assert set(queues) == {"provisioning", "privacy", "default"}


def test_one_beat_guarded_by_a_lock(compose):
    beats = [name for name, s in compose["services"].items() if "beat" in " ".join(map(str, s.get("command") or []))]
    assert beats == ["beat"]
    beat = compose["services"]["beat"]
    assert beat["command"][:3] == ["python", "manage.py", "run_beat"]
    assert beat["deploy"]["replicas"] == 1


def test_services_have_healthchecks_and_restart_policies(compose):
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"


def test_secrets_come_from_the_environment_and_images_are_pinned(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if image and not image.startswith("cloud-licenses-portal"):
            assert ":" in image and not image.endswith(":latest"), f"{name} image {image} is not pinned"
        env = service.get("environment") or {}
        for key, value in env.items():
            if "PASSWORD" in key or "SECRET" in key:
                assert str(value).startswith("${"), f"{name}.{key} must come from .env, not the file"
    assert "SECRET_KEY:" not in text
    assert compose["services"]["msemulator"]["profiles"] == ["sandbox"]
    assert compose["services"]["web"]["environment"]["WEB_WORKERS"].startswith("${WEB_WORKERS")


def test_dockerfile_is_multi_stage_pinned_and_non_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2 and all(":" in image and "latest" not in image for image in froms)
    assert "USER 10001" in dockerfile and "collectstatic" in dockerfile


# --- the single beat -------------------------------------------------------------------------

@pytest.fixture
def redis_client():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs REDIS_URL: the beat lock lives in Redis")
    client = redis.Redis.from_url(url)
    client.delete("portal:celery-beat:lock")
    yield client, url
    client.delete("portal:celery-beat:lock")


def _run_beat(url: str, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_beat", "--lock-seconds", "3", "--schedule", str(tmp_path / "schedule")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for_line(process: subprocess.Popen, needle: str, seconds: float) -> bool:
    found = threading.Event()

    def read():
        for line in process.stdout:
            if needle in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return found.wait(seconds)


def test_a_second_beat_waits_until_the_first_lock_expires(redis_client, tmp_path):
    client, url = redis_client
    # Someone else (the first beat) holds the lock and then dies without renewing it.
    client.set("portal:celery-beat:lock", b"other-holder", px=15000)
    beat = _run_beat(url, tmp_path)
    try:
        assert _wait_for_line(beat, "beat standby", 30), f"the second beat did not wait: {beat.poll()}"
        assert client.get("portal:celery-beat:lock") == b"other-holder"
        assert _wait_for_line(beat, "beat lock acquired", 40), "it did not take over after the lock expired"
        check = subprocess.run([*beat.args[:3], "--check"], cwd=ROOT, env={**os.environ, "REDIS_URL": url},
                               capture_output=True, timeout=60, check=False)
        assert check.returncode == 0
    finally:
        beat.terminate()
        beat.wait(20)
