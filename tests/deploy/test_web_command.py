"""The image's build step and web command, run here as the Dockerfile and the manifests run them (no container).

`collectstatic` as in the Dockerfile's RUN, then the web container's gunicorn command with the production
settings (DEBUG off) on the test database: it serves the console and, through WhiteNoise, the static files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from tests.deploy.conftest import REPO, find

BIN = Path(sys.executable).parent


def test_the_web_command_serves_slipway_with_production_settings(rendered, database_url, tmp_path):
    [web] = find(rendered["production"], "Deployment", "slipway-web")["spec"]["template"]["spec"]["containers"]
    static_root = tmp_path / "static"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "SLIPWAY_VAR_DIR": str(tmp_path / "var"),
           "STATIC_ROOT": str(static_root)}
    # given the static files collected as the Dockerfile does
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=REPO, check=True, timeout=120,
                   env={**env, "DEBUG": "1", "SECRET_KEY": "collectstatic-only"}, capture_output=True)
    # and the web container's command on a free loopback port, DEBUG off, its settings as the Secret gives them
    command = [("--bind=127.0.0.1:0" if arg.startswith("--bind=") else arg) for arg in web["command"]]
    production = {"DEBUG": "false", "SECRET_KEY": "k" * 50, "SLIPWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                  "SLIPWAY_AUDIT_KEYS": "k1:" + "a" * 40, "DATABASE_URL": database_url, "ALLOWED_HOSTS": "localhost",
                  "WEB_CONCURRENCY": "1"}
    server = subprocess.Popen(command, cwd=REPO, env={**env, **production}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        port = listening_port(server)
        # as the probes and the ingress send it: an allowed host, TLS terminated in front
        headers = {"Host": "localhost", "X-Forwarded-Proto": "https"}

        # when
        login = requests.get(f"http://127.0.0.1:{port}/login/", headers=headers, timeout=10)
        css = requests.get(f"http://127.0.0.1:{port}/static/admin/css/base.css", headers=headers, timeout=10)
        plain = requests.get(f"http://127.0.0.1:{port}/login/", headers={"Host": "localhost"}, timeout=10,
                             allow_redirects=False)

        # then
        assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
        assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")  # why probes send the header
    finally:
        server.terminate()
        server.wait(timeout=30)


def listening_port(server: subprocess.Popen, timeout: float = 30) -> int:
    """The port gunicorn reports it listens on ("Listening at: http://127.0.0.1:PORT")."""
    deadline, seen = time.monotonic() + timeout, []
    for line in server.stdout:
        seen.append(line)
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
        if time.monotonic() > deadline:
            break
    raise AssertionError("gunicorn did not start:\n" + "".join(seen))
