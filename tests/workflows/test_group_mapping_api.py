"""The group mapping over the API: platform admins only (403 for everyone else, reads too), bad input a 400
naming the field, every change audited."""
import pytest

from tests.deployments.factories import MembershipFactory, UserFactory
from workflows.models import AuditEvent, GroupRoleMapping

pytestmark = pytest.mark.django_db
URL = "/api/v1/auth/group-mappings/"


@pytest.mark.parametrize("who", ["maintainer", "finance", "staff-only"])
def test_only_platform_admins_read_or_change_the_mapping(api, project, who):
    user = {"maintainer": lambda: MembershipFactory(project=project, role="maintainer").user,
            "finance": lambda: UserFactory(finance=True), "staff-only": lambda: UserFactory(is_staff=True)}[who]()
    client = api.as_user(user)
    assert client.get(URL).status_code == 403
    answer = client.post(URL, {"group": "devs", "grant": "platform_admin"}, format="json")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    assert not GroupRoleMapping.objects.exists() and not AuditEvent.objects.exists()


def test_platform_admins_edit_the_mapping_audited(api, staff, project):
    client = api.as_user(staff)
    created = client.post(URL, {"group": "shop-devs", "grant": "project_role", "project": "shop", "role": "developer"},
                          format="json")
    assert created.status_code == 201, created.content
    mapping_id = created.json()["id"]
    changed = client.patch(f"{URL}{mapping_id}/", {"role": "maintainer"}, format="json")
    assert changed.status_code == 200 and changed.json()["role"] == "maintainer"
    assert client.delete(f"{URL}{mapping_id}/").status_code == 204
    events = AuditEvent.objects.filter(target_type="workflows.grouprolemapping").order_by("id")
    assert [(e.action, e.actor) for e in events] == [
        ("object.created", "user:ops"), ("object.changed", "user:ops"), ("object.deleted", "user:ops")]
    assert events[1].before == {"role": "developer"} and events[1].after == {"role": "maintainer"}


@pytest.mark.parametrize(("body", "field"), [
    ({"group": "devs", "grant": "project_role", "role": "developer"}, "project"),
    ({"group": "devs", "grant": "project_role", "project": "shop"}, "role"),
    ({"group": "devs", "grant": "finance", "project": "shop"}, "project"),
    ({"group": " ", "grant": "finance"}, "group"),
    ({"group": "devs", "grant": "everything"}, "grant"),
])
def test_bad_input_is_a_400_naming_the_field(api, staff, project, body, field):
    answer = api.as_user(staff).post(URL, body, format="json")
    assert answer.status_code == 400 and field in answer.json()["extra"]["fields"], answer.content
    assert not GroupRoleMapping.objects.exists() and not AuditEvent.objects.exists()


def test_a_duplicate_rule_is_a_400(api, staff, project):
    client = api.as_user(staff)
    body = {"group": "Devs", "grant": "finance"}
    assert client.post(URL, body, format="json").status_code == 201
    answer = client.post(URL, {**body, "group": "devs"}, format="json")
    assert answer.status_code == 400 and "group" in answer.json()["extra"]["fields"]
