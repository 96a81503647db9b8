"""Holes a red-team pass over the governance work found, each closed: four eyes after an edit, approvals of
approvers who lost the role, scale bounds of what was approved. Real PostgreSQL and the sandbox cluster."""
import pytest

from deployments.models import Environment, ProjectMembership
from paas_site.errors import NotAllowed
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, UserFactory
from tests.workflows.factories import PINNED, file_release
from workflows import services
from workflows.choices import ReleaseState

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api", replicas=1,
                              cpu_request="100m", cpu_limit="500m")


@pytest.fixture
def approvers(project):
    return [MembershipFactory(project=project, role="approver", user=UserFactory(username=f"appr{i}")).user
            for i in (1, 2)]


# -- approvals that count although they should not -------------------------------------------------------
def test_maintainer_edits_a_colleagues_release_then_approves_it_alone(developer, maintainer, app, prod):
    """Four eyes broken: a maintainer swaps the image of a developer's release and approves his own edit."""
    # given a developer's release awaiting one approval
    release = file_release(actor=developer, application=app, environment=prod, version="1.0")
    # when a maintainer (an editor and an approver) changes what it deploys to an image of their choosing
    evil = "registry.example.com/shop/api:1.0@sha256:" + "e" * 64
    services.release_change(release_id=release.id, actor=maintainer, image=evil)
    # then the maintainer is an author of what runs now and may not be its only approver
    with pytest.raises(NotAllowed):
        services.approval_grant(release_id=release.id, actor=maintainer)
    release.refresh_from_db()
    assert release.state == ReleaseState.REQUESTED


def test_an_approval_keeps_counting_after_the_approver_lost_the_role(developer, app, project, approvers):
    """Role change between approval and policy met: a removed approver's earlier approval still counts."""
    prod = Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=2)
    first, second = approvers
    release = file_release(actor=developer, application=app, environment=prod, version="1.0")
    services.approval_grant(release_id=release.id, actor=first)
    # the first approver is removed from the project (left the team, or was found to be compromised)
    ProjectMembership.objects.filter(user=first, project=project).delete()
    services.approval_grant(release_id=release.id, actor=second)
    release.refresh_from_db()
    assert release.state == ReleaseState.REQUESTED, "an approval of someone who is no approver now counted"


# -- inputs read live instead of from what was approved ----------------------------------------------------
def test_scale_bounds_come_from_the_live_application_not_the_approved_spec(api, project, developer, sandbox_cluster):
    """A developer widens the autoscaling bounds by PATCH (no release) and scales prod past the approved HPA max."""
    from deployments import services as deployments
    from deployments.manifests import ReleaseConfig
    from tests.deployments.factories import deploy_spec

    # given prod runs an approved revision with autoscaling 1..2
    env = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=1,
                                     rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1, autoscaling_min=1, autoscaling_max=2,
                             autoscaling_target_cpu=80)
    deployments.deployment_apply(application_id=app.id, environment_id=env.id, spec=deploy_spec(app, env),
                                 image=PINNED.format(version="1.0"), config=ReleaseConfig(env={}, files={}),
                                 release="1")
    # when the developer edits the application (no release filed, nothing approved) and scales
    edited = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"autoscaling_max": 50}, format="json")
    assert edited.status_code == 200, edited.json()
    response = api.as_user(developer).post(f"/api/v1/applications/{app.id}/scale/",
                                           {"environment": "prod", "replicas": 50}, format="json")
    # then the bounds are those of what runs (the approved spec), not of the edited row
    assert response.status_code == 400, response.json()
    kube = deployments.cluster_client(sandbox_cluster)
    assert kube.read("Deployment", "api", "shop-prod")["spec"]["replicas"] <= 2
