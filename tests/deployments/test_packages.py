"""Package URLs: the allow-list, and fetching from a real HTTP server on loopback (size limit, sha256, redirects)."""
import hashlib

import pytest

from deployments.packages import package_download, package_url_check
from paas_site.errors import PermanentError, TransientError

CONTENT = b"PK\x03\x04" + b"x" * 5000
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def allowed(settings):
    settings.SLIPWAY_PACKAGE_HOSTS = ["127.0.0.1", "*.artifacts.example.com"]
    settings.SLIPWAY_PACKAGE_MAX_BYTES = 10_000
    return settings


@pytest.mark.parametrize("url, problem", [
    ("https://127.0.0.1/app.war", ""),
    ("http://127.0.0.1:8081/builds/app-1.2.war", ""),
    ("https://ci.artifacts.example.com/app.war", ""),
    ("https://artifacts.example.com.evil.net/app.war", "host artifacts.example.com.evil.net is not allowed"),
    ("https://evil.net/app.war", "host evil.net is not allowed for packages (allowed: 127.0.0.1, *.artifacts"),
    ("ftp://127.0.0.1/app.war", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("https://user:pw@127.0.0.1/app.war", "must not carry credentials"),
    ("https://127.0.0.1/", "must end in a file name"),
    ("https://127.0.0.1/.hidden", "must end in a file name"),
])
def test_the_allow_list(allowed, url, problem):
    assert (problem in package_url_check(url)) if problem else package_url_check(url) == ""


def test_nothing_is_allowed_until_hosts_are_configured(settings):
    settings.SLIPWAY_PACKAGE_HOSTS = []

    assert "none are configured (SLIPWAY_PACKAGE_HOSTS)" in package_url_check("https://127.0.0.1/app.war")


@pytest.fixture
def files(allowed, http_peer):
    """A file server: ``files.routes[path] = (status, headers, body)``."""
    routes: dict = {}
    peer = http_peer(lambda request: routes.get(request.path, (404, {}, b"no such file")))
    peer.routes, peer.base = routes, peer.url
    return peer


def test_a_package_is_downloaded_and_checked_against_its_sha256(files):
    files.routes["/builds/app-1.2.war"] = (200, {}, CONTENT)

    with package_download(f"{files.base}/builds/app-1.2.war", sha256=SHA) as package:
        assert (package.name, package.size, package.sha256) == ("app-1.2.war", len(CONTENT), SHA)
        assert package.file.read() == CONTENT


def test_a_sha256_mismatch_is_a_permanent_error_naming_both(files):
    files.routes["/app.war"] = (200, {}, CONTENT)

    with pytest.raises(PermanentError, match=f"has sha256 {SHA}, not the expected {'0' * 64}"):
        with package_download(f"{files.base}/app.war", sha256="0" * 64):
            pass


def test_a_declared_size_over_the_limit_is_refused_before_the_download(files):
    files.routes["/big.war"] = (200, {}, b"x" * 10_001)

    with pytest.raises(PermanentError, match="is 10001 bytes; the limit is 10000 bytes"):
        with package_download(f"{files.base}/big.war"):
            pass


def test_a_streamed_package_over_the_limit_is_cut_off(files):
    files.routes["/big.war"] = (200, {}, iter([b"x" * 1000] * 20))  # no Content-Length

    with pytest.raises(PermanentError, match="is larger than the limit of 10000 bytes"):
        with package_download(f"{files.base}/big.war"):
            pass


def test_redirects_are_followed_only_to_allowed_hosts(files):
    files.routes["/latest.war"] = (302, {"Location": "/builds/app-1.2.war"}, b"")
    files.routes["/builds/app-1.2.war"] = (200, {}, CONTENT)
    files.routes["/escape.war"] = (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b"")

    with package_download(f"{files.base}/latest.war", sha256=SHA) as package:
        assert package.name == "latest.war"
    with pytest.raises(PermanentError, match="redirects to http://169.254.169.254/latest/meta-data, which points at "
                                             "an address refused by the outbound policy"):
        with package_download(f"{files.base}/escape.war"):
            pass


def test_a_missing_package_is_permanent_and_a_server_in_trouble_transient(files):
    files.routes["/busy.war"] = (503, {}, b"")

    with pytest.raises(PermanentError, match="could not be fetched: HTTP 404"):
        with package_download(f"{files.base}/gone.war"):
            pass
    with pytest.raises(TransientError, match="unavailable: HTTP 503"):
        with package_download(f"{files.base}/busy.war"):
            pass


def test_a_url_off_the_allow_list_is_not_fetched(allowed):
    with pytest.raises(PermanentError, match="host evil.net is not allowed"):
        with package_download("https://evil.net/app.war"):
            pass
