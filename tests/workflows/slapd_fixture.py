"""A real LDAP directory (Debian's ``slapd``, OpenLDAP 2.5) for the sign-in tests, once per session.

``.ci/test`` installs ``slapd``; the ``slapd`` fixture writes a ``slapd.conf`` in a temporary directory,
loads a small directory with ``slapadd`` (offline, instant) and runs slapd on two free loopback ports:
``ldap://`` (StartTLS) and ``ldaps://``, with a certificate from a throwaway CA. ``security tls=1`` makes
slapd refuse every operation that is not over TLS, so a sign-in that works proves TLS was used.

The directory: ``ou=people`` (inetOrgPerson, ``employeeType: disabled`` marks a disabled account) and
``ou=groups`` (groupOfNames); ``cn=reader`` is the service account Slipway searches with.
"""
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry_fixture import CertificateAuthority, _free_port

SLAPD, SLAPADD = "/usr/sbin/slapd", "/usr/sbin/slapadd"
SUFFIX = "dc=slipway,dc=test"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{SUFFIX}", "root-secret-8Jd2"
READER_DN, READER_PASSWORD = f"cn=reader,{SUFFIX}", "reader-secret-3kP9"
PASSWORD = "directory-password-5Tz!"  # every person's
DISABLED_FILTER = "(employeeType=disabled)"
PEOPLE = {  # uid → (groups, disabled)
    "alice": (["developers"], False),
    "bob": (["approvers", "finance-team"], False),
    "carol": (["developers"], True),
    "dave": (["developers", "maintainers"], False),
    "erin": (["developers"], False),
    "frank": (["platform-admins"], False),
}
GROUPS = ["developers", "approvers", "maintainers", "finance-team", "platform-admins"]
CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
security tls=1
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{reader_dn}" read by self read by * none
"""


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: slipway\no: Slipway tests",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
        f"userPassword: {READER_PASSWORD}",
    ]
    for uid, (_, disabled) in PEOPLE.items():
        entries.append(f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
                       f"sn: {uid.title()}\ngivenName: {uid.title()}\nmail: {uid}@slipway.test\n"
                       f"userPassword: {PASSWORD}" + ("\nemployeeType: disabled" if disabled else ""))
    for group in GROUPS:
        members = [f"uid={uid},ou=people,{SUFFIX}" for uid, (groups, _) in PEOPLE.items() if group in groups]
        # groupOfNames needs a member: the service account keeps a group valid when a test empties it
        entries.append(f"dn: cn={group},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {group}\n"
                       + "\n".join(f"member: {dn}" for dn in [READER_DN, *members]))
    return "\n\n".join(entries) + "\n"


@dataclass
class Directory:
    host: str
    ldap_port: int
    ldaps_port: int
    ca_file: Path

    def env(self, *, ldaps: bool = True, **overrides: str) -> dict[str, str]:
        """The ``SLIPWAY_LDAP_*`` variables a user would set for this directory."""
        env = {
            "SLIPWAY_LDAP_URI": f"ldaps://{self.host}:{self.ldaps_port}" if ldaps
            else f"ldap://{self.host}:{self.ldap_port}",
            "SLIPWAY_LDAP_START_TLS": "false" if ldaps else "true",
            "SLIPWAY_LDAP_CA_FILE": str(self.ca_file),
            "SLIPWAY_LDAP_BIND_DN": READER_DN,
            "SLIPWAY_LDAP_BIND_PASSWORD": READER_PASSWORD,
            "SLIPWAY_LDAP_USER_BASE": f"ou=people,{SUFFIX}",
            "SLIPWAY_LDAP_GROUP_BASE": f"ou=groups,{SUFFIX}",
            "SLIPWAY_LDAP_DISABLED_FILTER": DISABLED_FILTER,
            "SLIPWAY_LDAP_NAME": "Slipway test directory",
        }
        env.update(overrides)
        return env

    def modify(self, dn: str, changes: list[tuple[int, str, list[bytes] | None]]) -> None:
        """Change an entry as the directory's administrator (over ldaps, as slapd requires)."""
        import ldap

        connection = ldap.initialize(f"ldaps://{self.host}:{self.ldaps_port}")
        connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self.ca_file))
        connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        try:
            connection.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
            connection.modify_s(dn, changes)
        finally:
            connection.unbind_s()

    def group_remove(self, group: str, uid: str) -> None:
        import ldap

        self.modify(f"cn={group},ou=groups,{SUFFIX}", [(ldap.MOD_DELETE, "member", [f"uid={uid},ou=people,{SUFFIX}".encode()])])

    def disable(self, uid: str) -> None:
        import ldap

        self.modify(f"uid={uid},ou=people,{SUFFIX}", [(ldap.MOD_REPLACE, "employeeType", [b"disabled"])])


def _wait_listening(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited ({process.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"slapd did not listen on {port}: {log.read_text()[-2000:]}")


@contextmanager
def slapd_running(workdir: Path) -> Iterator[Directory]:
    """slapd with the small directory above, in ``workdir``, until the block ends (the benchmark uses it too)."""
    if not os.path.exists(SLAPD):
        raise RuntimeError(f"{SLAPD} is missing: apt-get install slapd ldap-utils (.ci/test does this).")
    (workdir / "db").mkdir(parents=True)
    ca = CertificateAuthority(workdir / "ca")
    cert, key = ca.issue(workdir / "server", "127.0.0.1")
    config = workdir / "slapd.conf"
    config.write_text(CONFIG.format(dir=workdir, ca=ca.cert, cert=cert, key=key, suffix=SUFFIX, root_dn=ROOT_DN,
                                    root_password=ROOT_PASSWORD, reader_dn=READER_DN))
    (workdir / "directory.ldif").write_text(_ldif())
    subprocess.run([SLAPADD, "-f", str(config), "-l", str(workdir / "directory.ldif")], check=True,
                   capture_output=True)
    ldap_port, ldaps_port = _free_port(), _free_port()
    log = workdir / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [SLAPD, "-f", str(config), "-h", f"ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/",
             "-d", "0"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(ldaps_port, process, log)
        yield Directory("127.0.0.1", ldap_port, ldaps_port, ca.cert)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir / "db", ignore_errors=True)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory) -> Iterator[Directory]:
    try:
        with slapd_running(tmp_path_factory.mktemp("slapd")) as directory:
            yield directory
    except RuntimeError as exc:
        pytest.fail(str(exc))

def directory_settings(settings, env: dict[str, str]) -> None:
    """Configure Slipway for a directory as ``paas_site.settings`` does from these variables."""
    from paas_site.signin_config import authentication_backends, ldap_settings

    for name, value in ldap_settings(env).items():
        setattr(settings, name, value)
    settings.SLIPWAY_LDAP_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = authentication_backends(
        local=settings.SLIPWAY_LOCAL_LOGIN, ldap=True, oidc=settings.SLIPWAY_OIDC_ENABLED)


@pytest.fixture
def ldap_signin(settings, slapd) -> Directory:
    """Slipway signing in through the session's slapd (ldaps://)."""
    directory_settings(settings, slapd.env())
    return slapd
