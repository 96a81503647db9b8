"""Benchmark: an LDAP sign-in with the group mapping, and the directory re-check of API tokens.

Run by hand, never in CI (it refuses a database whose name lacks "bench" and replaces its mapping rows)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench .venv/bin/python bench/signin.py

It starts a real slapd (the tests' directory, ldaps, ``tests/workflows/slapd_fixture.py``), configures
Slipway for it through the ``SLIPWAY_LDAP_*`` variables, loads ``--rules`` mapping rows over
``--projects`` projects (the signing-in user matches a handful), and prints medians of ``--rounds``:

1. the floor: what the directory itself costs for a sign-in, done with python-ldap alone (connect with
   TLS, bind as the service account, search the user, bind as them, search their groups);
2. ``authenticate()`` through Slipway (axes, the LDAP backend, linking, the mapping, its audit events);
3. an API token request without a re-check (the reference: any authenticated request), and with one on
   every request (``RECHECK_SECONDS=0``).

The ceiling it names: a sign-in, or a request that re-checks the directory, costs at most 3 ordinary
authenticated API requests (``CEILING``).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchdb import database_prepare, production_like_environment, sql  # noqa: E402

from tests.workflows.slapd_fixture import PASSWORD, READER_DN, READER_PASSWORD, SUFFIX, slapd_running  # noqa: E402

CEILING = 3.0  # a sign-in or a re-checking request may cost up to 3 ordinary authenticated API requests


def median_ms(action, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bare_directory(directory) -> None:
    import ldap

    connection = ldap.initialize(f"ldaps://{directory.host}:{directory.ldaps_port}")
    connection.set_option(ldap.OPT_X_TLS_CACERTFILE, str(directory.ca_file))
    connection.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    connection.simple_bind_s(READER_DN, READER_PASSWORD)
    [(dn, _)] = connection.search_s(f"ou=people,{SUFFIX}", ldap.SCOPE_SUBTREE, "(uid=dave)")
    connection.simple_bind_s(dn, PASSWORD)
    connection.simple_bind_s(READER_DN, READER_PASSWORD)
    connection.search_s(f"ou=groups,{SUFFIX}", ldap.SCOPE_SUBTREE, f"(&(objectClass=groupOfNames)(member={dn}))")
    connection.unbind_s()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"== load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="slipway-bench-slapd-") as workdir, \
            slapd_running(Path(workdir)) as directory:
        production_like_environment()
        os.environ.update(directory.env(), ALLOWED_HOSTS="testserver", SECURE_SSL_REDIRECT="false",
                          SLIPWAY_LOGIN_FAILURE_LIMIT="100000", SLIPWAY_LOGIN_ADDRESS_FAILURE_LIMIT="100000")
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth import authenticate, get_user_model
        from django.db import connection
        from django.test import Client, RequestFactory
        from django.test.utils import CaptureQueriesContext

        from deployments.models import Project
        from workflows.models import DirectoryAccount, GroupRoleMapping

        database_prepare()
        sql("TRUNCATE workflows_grouprolemapping, workflows_directoryaccount, deployments_projectmembership, "
            "axes_accessattempt, axes_accesslog CASCADE")
        get_user_model().objects.filter(username="dave").delete()  # and their tokens
        projects = [Project.objects.get_or_create(slug=f"bench-{n}", defaults={"name": f"Bench {n}"})[0]
                    for n in range(args.projects)]
        GroupRoleMapping.objects.bulk_create(
            GroupRoleMapping(group=f"team-{n}", grant="project_role", project=projects[n % len(projects)],
                             role="developer") for n in range(args.rules))
        for group, role in (("developers", "developer"), ("maintainers", "maintainer")):
            GroupRoleMapping.objects.create(group=group, grant="project_role", project=projects[0], role=role)
        print(f"== {GroupRoleMapping.objects.count()} mapping rules over {len(projects)} projects; slapd on "
              f"ldaps://127.0.0.1:{directory.ldaps_port}")

        request = RequestFactory().post("/login/")
        request.META["REMOTE_ADDR"] = "192.0.2.1"
        assert authenticate(request, username="dave", password=PASSWORD) is not None, "the directory refused dave"
        client = Client()
        token = client.post("/api/v1/auth/token/", {"username": "dave", "password": PASSWORD, "name": "bench"},
                            content_type="application/json", REMOTE_ADDR="192.0.2.1").json()["token"]
        header = {"HTTP_AUTHORIZATION": f"Token {token}"}

        def token_request() -> None:
            assert client.get("/api/v1/auth/tokens/", **header).status_code == 200

        def rechecked() -> None:
            DirectoryAccount.objects.filter(user__username="dave").update(checked_at="2000-01-01T00:00:00Z")
            token_request()

        settings.SLIPWAY_DIRECTORY_RECHECK_SECONDS = 3600
        floor = median_ms(lambda: bare_directory(directory), args.rounds)
        plain = median_ms(token_request, args.rounds)
        with CaptureQueriesContext(connection) as queries:
            authenticate(request, username="dave", password=PASSWORD)
        statements = queries.final_queries - queries.initial_queries  # the next request clears the log
        signin = median_ms(lambda: authenticate(request, username="dave", password=PASSWORD), args.rounds)
        settings.SLIPWAY_DIRECTORY_RECHECK_SECONDS = 0
        recheck = median_ms(rechecked, args.rounds)
        ceiling = CEILING * plain
        print(f"the directory alone (python-ldap)      {floor:8.1f} ms   (what slapd and TLS cost)")
        print(f"API request with a token (reference)   {plain:8.1f} ms   ceiling {CEILING:.0f}× this = {ceiling:.1f} ms")
        print(f"LDAP sign-in through Slipway           {signin:8.1f} ms   ratio {signin / plain:5.2f} of the reference "
              f"({statements} SQL statements)")
        print(f"API request that re-checks the directory {recheck:6.1f} ms   ratio {recheck / plain:5.2f} of the reference")
    print(f"== load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
