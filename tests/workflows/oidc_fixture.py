"""A real OpenID provider for the sign-in tests: panva's ``oidc-provider`` (OpenID Certified) on Node.js.

``.ci/test`` runs ``npm ci`` in ``tests/oidc_provider/``; the ``oidc_provider`` fixture starts
``server.js`` there once per session on a free loopback port, with two clients (``slipway``, and
``another-app`` whose tokens Slipway must refuse; PKCE required) whose redirect URIs are the test
client's and the live server's callback. Its accounts come
from a JSON file the tests rewrite (``OpenIDProvider.accounts``); its development login page takes any
password. ``provider_login`` walks that page with ``requests`` (the browser test uses Chromium).
"""
import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

HERE = Path(__file__).resolve().parent.parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "slipway", "oidc-client-secret-9Hq2-7Lp4-Xw3z"
OTHER_CLIENT_ID, OTHER_CLIENT_SECRET = "another-app", "another-app-secret-4Rt8-1Zm6"  # tokens not meant for us
ACCOUNTS = {
    "olivia": {"email": "olivia@slipway.test", "groups": ["shop-developers", "finance-team"]},
    "oscar": {"email": "oscar@slipway.test", "groups": ["shop-approvers"], "groups_in": "id_token"},
}


@dataclass
class OpenIDProvider:
    issuer: str
    accounts_file: Path

    def accounts(self, accounts: dict) -> None:
        self.accounts_file.write_text(json.dumps(accounts))

    def env(self, **overrides: str) -> dict[str, str]:
        """The ``SLIPWAY_OIDC_*`` variables a user would set for this provider."""
        return {
            "SLIPWAY_OIDC_ISSUER": self.issuer, "SLIPWAY_OIDC_CLIENT_ID": CLIENT_ID,
            "SLIPWAY_OIDC_CLIENT_SECRET": CLIENT_SECRET, "SLIPWAY_OIDC_NAME": "Test IdP",
            "SLIPWAY_OIDC_SCOPES": "openid email profile groups", **overrides,
        }


def oidc_settings_apply(settings, env: dict[str, str]) -> None:
    """Configure Slipway for a provider as ``paas_site.settings`` does from these variables."""
    from paas_site.signin_config import authentication_backends, oidc_settings
    from workflows.directory import oidc

    for name, value in oidc_settings(env).items():
        setattr(settings, name, value)
    settings.SLIPWAY_OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = authentication_backends(
        local=settings.SLIPWAY_LOCAL_LOGIN, oidc=True, ldap=settings.SLIPWAY_LDAP_ENABLED)
    oidc._discovered.clear()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory, live_server) -> OpenIDProvider:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "oidc-provider").exists():
        pytest.fail("Node.js and tests/oidc_provider/node_modules are needed: `npm ci` there (.ci/test does it).")
    workdir = tmp_path_factory.mktemp("oidc")
    provider = OpenIDProvider("", workdir / "accounts.json")
    provider.accounts(ACCOUNTS)
    config = workdir / "config.json"
    redirect_uris = ["http://testserver/oidc/callback/", f"{live_server.url}/oidc/callback/"]
    config.write_text(json.dumps({"port": 0, "accounts": str(provider.accounts_file), "clients": [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris},
        {"client_id": OTHER_CLIENT_ID, "client_secret": OTHER_CLIENT_SECRET, "redirect_uris": redirect_uris},
    ]}))
    process = subprocess.Popen([node, str(HERE / "server.js"), str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()  # the first line is the issuer, once it listens
        if not line.startswith("{"):
            pytest.fail(f"oidc-provider did not start (exit {process.poll()}): {line!r}")
        provider.issuer = json.loads(line)["issuer"]
        threading.Thread(target=process.stdout.read, daemon=True).start()  # drain, never block the provider
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def oidc_signin(settings, oidc_provider) -> OpenIDProvider:
    oidc_settings_apply(settings, oidc_provider.env())
    yield oidc_provider
    oidc_provider.accounts(ACCOUNTS)


def provider_login(authorize_url: str, login: str) -> str:
    """Sign in at the provider's development login page and consent, as a browser would; returns the
    callback URL (with ``code`` and ``state``) the provider redirects to."""
    session = requests.Session()
    url = authorize_url
    for _ in range(10):
        response = session.get(url, allow_redirects=False, timeout=10)
        while response.status_code in (302, 303):
            url = urljoin(url, response.headers["Location"])
            if "/oidc/callback/" in url:
                return url
            response = session.get(url, allow_redirects=False, timeout=10)
        form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        assert form, f"no form at {url}: {response.status_code} {response.text[:300]}"
        action = urljoin(url, form.group(1).replace("&amp;", "&"))
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text).group(1)
        data = {"prompt": prompt, "login": login, "password": "any"} if prompt == "login" else {"prompt": prompt}
        response = session.post(action, data=data, allow_redirects=False, timeout=10)
        url = urljoin(action, response.headers["Location"])
        if "/oidc/callback/" in url:
            return url
    raise AssertionError("the provider never redirected back")


def callback_query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
