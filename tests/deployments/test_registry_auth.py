"""Registry auth and TLS against real ``docker-registry`` servers: HTTPS with a private CA and htpasswd basic
auth, and token auth with a small real token service (RS256 JWTs the registry verifies)."""
import hashlib
import io

import pytest

from deployments.base_images import BaseImageSpec, base_image_push
from deployments.builds import BuildSpec, BuiltImage, image_build
from deployments.packages import FetchedPackage
from deployments.registry import RegistryClient, registry_access, resolve_digest
from paas_site.errors import PermanentError
from tests.registry_fixture import CertificateAuthority, RegistryServer, TokenIssuer, htpasswd_auth

pytestmark = pytest.mark.integration

USER, PASSWORD = "slipway", "s3cret-registry-password"
BASE = BaseImageSpec(name="tomcat", app_path="/usr/local/tomcat/webapps", config_path="/conf", port=8080)
WAR = b"PK\x03\x04 a war"


@pytest.fixture(scope="module")
def secure_registry(tmp_path_factory):
    """HTTPS (certificate from a private CA) and htpasswd basic auth."""
    workdir = tmp_path_factory.mktemp("secure-registry")
    ca = CertificateAuthority(workdir / "ca")
    server = RegistryServer(workdir, tls=ca, auth=htpasswd_auth(workdir, USER, PASSWORD))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    """Token auth: the registry sends clients to a token service, which wants the user's credentials."""
    workdir = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(workdir / "issuer", USER, PASSWORD)
    server = RegistryServer(workdir, auth=issuer.registry_auth())
    server.issuer = issuer
    server.start()
    yield server
    server.stop()
    issuer.close()


def configure(settings, server, *, username=USER, password=PASSWORD, ca_file=None):
    settings.SLIPWAY_REGISTRY = server.host
    settings.SLIPWAY_REGISTRY_USERNAME, settings.SLIPWAY_REGISTRY_PASSWORD = username, password
    settings.SLIPWAY_REGISTRY_CA_FILE = str(server.tls.cert) if ca_file is None and server.tls else ca_file or ""


def build_into(server) -> BuiltImage:
    """Seed a base and build an image in ``server`` with the configured access."""
    client = RegistryClient(registry_access(server.host))
    base_image_push(client, "base/tomcat", "1", BASE)
    package = FetchedPackage(file=io.BytesIO(WAR), name="ROOT.war", size=len(WAR),
                             sha256=hashlib.sha256(WAR).hexdigest())
    return image_build(BuildSpec(base_image=f"{server.host}/base/tomcat:1", repository=f"{server.host}/shop/api",
                                 tag="1.0", app_path=BASE.app_path, config_path=BASE.config_path), package)


# -- HTTPS and basic auth ----------------------------------------------------------------------------------
def test_https_with_the_ca_file_and_basic_credentials_builds_and_resolves(secure_registry, settings):
    configure(settings, secure_registry)

    built = build_into(secure_registry)

    assert registry_access(secure_registry.host).base_url == f"https://{secure_registry.host}"
    assert resolve_digest(f"{built.repository}:1.0") == built.digest


def test_a_wrong_password_is_a_permanent_error_without_the_password(secure_registry, settings):
    configure(settings, secure_registry, password="wrong-password")

    with pytest.raises(PermanentError, match=rf"registry {secure_registry.host} rejected credentials for") as error:
        resolve_digest(f"{secure_registry.host}/shop/api:1.0")
    assert "wrong-password" not in str(error.value)


def test_no_credentials_for_a_registry_that_wants_them_is_a_permanent_error(secure_registry, settings):
    configure(settings, secure_registry, username="", password="")

    with pytest.raises(PermanentError, match=rf"registry {secure_registry.host} rejected credentials"):
        resolve_digest(f"{secure_registry.host}/shop/api:1.0")


def test_a_certificate_from_an_untrusted_ca_is_a_clear_permanent_error(secure_registry, settings, tmp_path):
    # given the CA file of another CA
    stranger = CertificateAuthority(tmp_path, name="Someone else's CA")
    configure(settings, secure_registry, ca_file=str(stranger.cert))
    # then
    with pytest.raises(PermanentError, match=rf"registry {secure_registry.host}: its TLS certificate is not trusted"
                                             r".*set SLIPWAY_REGISTRY_CA_FILE"):
        resolve_digest(f"{secure_registry.host}/shop/api:1.0")


def test_without_a_ca_file_the_private_certificate_is_not_trusted(secure_registry, settings):
    configure(settings, secure_registry, ca_file="")
    settings.SLIPWAY_REGISTRY_PLAIN_HTTP = False  # loopback without a CA file would otherwise mean plain HTTP

    with pytest.raises(PermanentError, match="its TLS certificate is not trusted"):
        resolve_digest(f"{secure_registry.host}/shop/api:1.0")


# -- token auth -------------------------------------------------------------------------------------------
def test_the_token_flow_sends_the_credentials_to_the_token_service_and_builds(token_registry, settings):
    # given
    configure(settings, token_registry)
    token_registry.issuer.requests.clear()
    # when
    built = build_into(token_registry)
    # then the image is there (its base layer mounted across repositories with a token for both), and every token
    # was asked for by the configured user, for the scopes the registry named
    assert resolve_digest(f"{built.repository}:1.0") == built.digest
    assert "base layers: 1 mounted" in built.log
    scopes = {(scope.rsplit(":", 1)[0], frozenset(scope.rsplit(":", 1)[1].split(",")))
              for asked, _ in token_registry.issuer.requests for scope in asked}
    assert {("repository:shop/api", frozenset({"pull", "push"})), ("repository:base/tomcat", frozenset({"pull"}))} <= scopes
    assert {user for _, user in token_registry.issuer.requests} == {USER}


def test_the_token_service_refusing_the_credentials_is_a_permanent_error(token_registry, settings):
    configure(settings, token_registry, password="wrong-password")

    with pytest.raises(PermanentError, match=rf"registry {token_registry.host} rejected credentials: token endpoint "
                                             "answered HTTP 401"):
        resolve_digest(f"{token_registry.host}/shop/api:1.0")


def test_an_anonymous_token_does_not_open_a_protected_registry(token_registry, settings):
    settings.SLIPWAY_REGISTRY = ""  # the token registry is not the configured one: spoken to anonymously

    with pytest.raises(PermanentError, match="token endpoint answered HTTP 401"):
        resolve_digest(f"{token_registry.host}/shop/api:1.0")
