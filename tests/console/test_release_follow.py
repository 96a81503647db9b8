"""``manage.py release_follow``: a real Celery worker runs the release while the command follows it."""
import io

import pytest
from django.core.management import CommandError, call_command

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory
from tests.workflows.factories import file_release
from workflows import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
BROKEN = "registry.example.com/shop/api:{version}-broken@sha256:" + "d" * 64


@pytest.fixture
def lane(project, sandbox_cluster, worker):
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=3)
    return ApplicationFactory(project=project, name="api", replicas=1), dev


def follow(release_id: int, *options: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("release_follow", str(release_id), "--interval", "0.1", *options, stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc), exc.returncode
    return out.getvalue(), 0


def test_follows_a_release_to_succeeded_and_exits_0(lane, developer):
    app, dev = lane
    release = file_release(actor=developer, application=app, environment=dev, version="1.0")

    output, code = follow(release.id, "--timeout", "60")

    assert code == 0, output
    assert output.splitlines()[0] == f"Release #{release.id}: shop/api 1.0 → dev"
    assert "[##############################] 100% succeeded" in output
    for step in ("Build", "Deploy", "Verify"):
        assert f"  {step:<9} #1 succeeded" in output
    assert "      | image registry.example.com/shop/api:1.0@sha256:" in output  # the build log, line by line
    assert output.rstrip().endswith(f"Release #{release.id} succeeded.")


def test_a_rolled_back_release_exits_1_naming_the_reason(lane, developer):
    app, dev = lane
    assert follow(file_release(actor=developer, application=app, environment=dev, version="1.0").id, "--timeout", "60")[1] == 0
    bad = file_release(actor=developer, application=app, environment=dev, version="1.1", image=BROKEN.format(version="1.1"))

    output, code = follow(bad.id, "--timeout", "60")

    assert code == 1
    assert "100% rolled_back" in output and "Verify    #1 failed" in output
    assert f"Release #{bad.id} ended rolled_back: " in output and "progress deadline" in output


def test_a_release_waiting_for_approval_times_out_with_exit_4(project, sandbox_cluster, developer):
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=1)
    release = file_release(actor=developer, application=ApplicationFactory(project=project), environment=prod)

    output, code = follow(release.id, "--timeout", "0.3")

    assert code == 4 and "  0% requested" in output and "still requested after 0.3 s" in output


def test_a_rejected_release_exits_1(project, sandbox_cluster, developer, maintainer):
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=1)
    release = file_release(actor=developer, application=ApplicationFactory(project=project), environment=prod)
    services.approval_reject(release_id=release.id, actor=maintainer, comment="not now")

    output, code = follow(release.id)

    assert code == 1 and "100% rejected" in output


def test_an_unknown_release_exits_3(db):
    output, code = follow(999999)

    assert code == 3 and "No release #999999." in output
