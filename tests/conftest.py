import pytest
from rest_framework.test import APIClient

from tests.deployments.factories import MembershipFactory, ProjectFactory, UserFactory

pytest_plugins = ["tests.registry_fixture", "tests.dns.pdns_fixture", "tests.http_peer", "tests.kubectl_fixture"]


@pytest.fixture
def api():
    """An API client; ``api.as_user(user)`` authenticates it."""
    client = APIClient()

    def as_user(user):
        client.force_authenticate(user)
        return client

    client.as_user = as_user
    return client


@pytest.fixture
def project(db):
    return ProjectFactory(slug="shop")


@pytest.fixture
def developer(project):
    return MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user


@pytest.fixture
def maintainer(project):
    return MembershipFactory(project=project, role="maintainer", user=UserFactory(username="lead")).user


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def finance_user(db):
    return UserFactory(username="money", finance=True)


@pytest.fixture
def staff(db):
    return UserFactory(username="ops", is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness buys nothing in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


LOOPBACK = ["127.0.0.0/8", "::1/128"]
TEST_REGISTRIES = ["registry.example.com", "registry.example"]


@pytest.fixture(autouse=True)
def outbound_policy(settings, request):
    """The real servers of the tests listen on loopback: allowed through the setting, as an admin would.

    Registries the tests name are allowed the same way (the ``registry`` fixture's when a test uses it).
    A test narrows either by setting it again.
    """
    settings.SLIPWAY_OUTBOUND_ALLOW = LOOPBACK
    started = request.getfixturevalue("registry") if "registry" in request.fixturenames else None
    settings.SLIPWAY_REGISTRIES = TEST_REGISTRIES + ([started.host] if hasattr(started, "host") else [])


@pytest.fixture(autouse=True)
def audit_checkpoint_dir(settings, tmp_path):
    """Each test's audit checkpoints in its own directory: a checkpoint names events only its test made."""
    settings.SLIPWAY_AUDIT_CHECKPOINT_DIR = tmp_path / "audit-checkpoints"
    return settings.SLIPWAY_AUDIT_CHECKPOINT_DIR


@pytest.fixture
def quick_pipeline(settings):
    """Retries and rollout polls in fractions of a second, for tests that run the real pipeline."""
    settings.SLIPWAY_RETRY_BASE_SECONDS = 0.2
    settings.SLIPWAY_RETRY_MAX_SECONDS = 0.5
    settings.SLIPWAY_VERIFY_POLL_SECONDS = 0.05


# -- real components ---------------------------------------------------------------
SANDBOX_TOKEN = "sandbox-test-token"


@pytest.fixture(scope="session")
def sandbox():
    """The sandbox cluster (Kubernetes API emulator) over HTTP, for the whole session."""
    from deployments.sandbox import SandboxCluster

    cluster = SandboxCluster(host="127.0.0.1", port=0, rollout_delay=0.1, token=SANDBOX_TOKEN)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def sandbox_cluster(db, sandbox):
    """A Cluster row pointing at a freshly reset sandbox."""
    from tests.deployments.factories import ClusterFactory

    sandbox.reset()
    sandbox.clear_faults()
    yield ClusterFactory(name="sandbox", api_server=sandbox.url, token=SANDBOX_TOKEN, ingress_address="127.0.0.10")
    sandbox.clear_faults()


WORKER_STARTED = False


@pytest.fixture(scope="session")
def celery_worker(django_db_blocker):
    """A real Celery worker (solo pool, in a thread) on the Redis broker of the test run."""
    from celery.contrib.testing.worker import start_worker

    from paas_site.celery import app

    app.control.purge()
    # no ping check: it needs a result backend, and tasks wait in Redis until the worker is up anyway
    with django_db_blocker.unblock(), start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        global WORKER_STARTED
        WORKER_STARTED = True
        yield app
    WORKER_STARTED = False


@pytest.fixture(autouse=True)
def drain_the_worker_before_flushing(request):
    """A transactional test's rows are flushed at its end, while the session's worker (once started) may still
    run what the test enqueued (filing any release enqueues its notification's fan-out): let it finish first,
    or the flush and the worker deadlock. (pytest-django's database fixtures are set up before this one, so
    this teardown runs before their flush.)"""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction"))
    if transactional and WORKER_STARTED:
        from paas_site.celery import app

        wait_until_idle(app)


@pytest.fixture
def worker(celery_worker):
    """The session's worker, drained before the test's data is flushed (a busy worker would deadlock the flush)."""
    yield celery_worker
    wait_until_idle(celery_worker)


def wait_until_idle(app, timeout: float = 30) -> None:
    import time

    from celery.worker import state

    queue = app.conf.task_default_queue
    idle_since = None
    deadline = time.monotonic() + timeout
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        while time.monotonic() < deadline:
            busy = client.llen(queue) or state.active_requests or state.reserved_requests
            if busy:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > 0.3:
                return
            time.sleep(0.05)
