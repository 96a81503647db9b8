"""Verify follows a rollout by watch: one read, then one stream resumed from its resourceVersion; polls
only when the watch fails. Against a sandbox serving HTTPS, reached through a Cluster row carrying its CA."""
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from deployments import kube, services
from deployments.manifests import ReleaseConfig
from deployments.sandbox import SandboxCluster
from deployments.sandbox import resources as r
from paas_site.errors import PermanentError, TransientError
from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory, deploy_spec

pytestmark = pytest.mark.django_db
TOKEN = "verify-watch-token"
IMAGE = "registry.example.com/shop/api:1.0@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def slow_sandbox():
    """Rollouts take 1.5 s here, so verify always starts before the rollout is done."""
    with SandboxCluster(port=0, rollout_delay=1.5, token=TOKEN, tls=True) as cluster:
        yield cluster


@pytest.fixture
def revision(slow_sandbox, project):
    slow_sandbox.reset()
    slow_sandbox.clear_faults()
    cluster = ClusterFactory(name="tls-sandbox", api_server=slow_sandbox.url, token=TOKEN,
                             ca_certificate=slow_sandbox.ca_pem, ingress_address="127.0.0.10")
    env = EnvironmentFactory(name="dev", cluster=cluster, rollout_deadline_seconds=10)
    app = ApplicationFactory(project=project, name="api", replicas=2)
    applied = services.deployment_apply(application_id=app.id, environment_id=env.id, image=IMAGE, release="1",
                                        config=ReleaseConfig(), spec=deploy_spec(app, env))
    slow_sandbox.app.requests.clear()
    yield applied
    slow_sandbox.clear_faults()


def _requests(sandbox: SandboxCluster, verb: str, path_part: str = "/deployments") -> list[dict]:
    """The query parameters of each `verb` request the sandbox served for paths containing `path_part`."""
    found = []
    for line in list(sandbox.app.requests):
        seen_verb, target = line.split(" ", 1)
        url = urlsplit(target)
        if seen_verb == verb and path_part in url.path:
            found.append({key: values[0] for key, values in parse_qs(url.query).items()})
    return found


def test_verify_reads_once_then_follows_one_watch_from_that_version(revision, slow_sandbox):
    status = services.deployment_verify(revision_id=revision.id, poll_interval=0.01)

    assert status.done and status.available_replicas == 2
    # a poll loop at 0.01 s would have read the status a hundred times during the 1.5 s rollout
    assert len(_requests(slow_sandbox, "get")) == 1
    (watch,) = _requests(slow_sandbox, "watch")
    assert watch["fieldSelector"] == "metadata.name=api" and watch["allowWatchBookmarks"] == "true"
    assert int(watch["resourceVersion"]) > 0


def test_the_watch_is_resumed_from_the_last_version_seen(revision, slow_sandbox, monkeypatch):
    # given: each watch request ends after one second, before the rollout (1.5 s) is done
    monkeypatch.setattr(kube, "WATCH_SECONDS", 1)

    # when
    status = services.deployment_verify(revision_id=revision.id, poll_interval=0.01)

    # then: the stream was picked up where it stopped, never re-read from scratch
    assert status.done
    watches = _requests(slow_sandbox, "watch")
    assert len(watches) >= 2 and all(w["timeoutSeconds"] == "1" for w in watches)
    versions = [int(w["resourceVersion"]) for w in watches]
    assert versions == sorted(versions)  # each from the last version seen (or bookmarked), never older
    assert len(_requests(slow_sandbox, "get")) == 1


def test_verify_polls_when_the_watch_fails(revision, slow_sandbox):
    slow_sandbox.inject_fault("503", count=50, method="WATCH")

    status = services.deployment_verify(revision_id=revision.id, poll_interval=0.05)

    assert status.done
    assert slow_sandbox.faults.describe()["remaining"] == 49  # one watch was tried, then it polled
    assert len(_requests(slow_sandbox, "get")) > 2


def test_a_deployment_deleted_while_watched_fails_verification(revision, slow_sandbox):
    timer = threading.Timer(0.3, slow_sandbox.store.delete, (r.DEPLOYMENTS, "shop-dev", "api"))
    timer.start()
    try:
        with pytest.raises(PermanentError, match="deployment api was deleted during its rollout"):
            services.deployment_verify(revision_id=revision.id, poll_interval=0.01)
    finally:
        timer.cancel()


def test_a_cluster_row_without_the_sandbox_ca_is_not_trusted(slow_sandbox):
    trusted = ClusterFactory(name="trusted", api_server=slow_sandbox.url, token=TOKEN,
                             ca_certificate=slow_sandbox.ca_pem)
    untrusted = ClusterFactory(name="untrusted", api_server=slow_sandbox.url, token=TOKEN)

    assert services.cluster_health(cluster_id=trusted.id).startswith("v1.31")
    with pytest.raises(TransientError, match="cluster untrusted unreachable: self-signed certificate in certificate chain"):
        services.cluster_health(cluster_id=untrusted.id)
