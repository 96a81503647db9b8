"""A kubeconfig carries inline credentials only: nothing in it makes Slipway run a program or read a file."""
import pytest

from deployments.admin import ClusterForm
from deployments.models import Cluster
from deployments.services import cluster_health
from paas_site.errors import PermanentError
from tests.conftest import SANDBOX_TOKEN

pytestmark = pytest.mark.django_db

CLUSTER = {"server": "https://kube.example.com:6443", "certificate-authority-data": "LS0tLQ=="}
USER = {"token": "inline-token"}


def kubeconfig(*, cluster: dict | None = None, user: dict | None = None) -> str:
    import json

    return json.dumps({  # JSON is YAML
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster or CLUSTER}],
        "users": [{"name": "u", "user": user or USER}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })


def exec_writing(marker, token: str = "inline-token") -> dict:
    credential = ('{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",'
                  f'"status":{{"token":"{token}"}}}}')
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "/bin/sh",
                     "args": ["-c", f"touch {marker}; printf '%s' '{credential}'"]}}


REFUSED = [
    ("users[0].user.exec", {"user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "id"}}}),
    ("users[0].user.auth-provider", {"user": {"auth-provider": {"name": "oidc", "config": {
        "idp-issuer-url": "http://169.254.169.254/"}}}}),
    ("users[0].user.tokenFile", {"user": {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}}),
    ("users[0].user.client-certificate", {"user": {"client-certificate": "/etc/ssl/private/a.crt",
                                                   "client-key-data": "LS0tLQ=="}}),
    ("users[0].user.client-key", {"user": {"client-certificate-data": "LS0tLQ==", "client-key": "/root/.ssh/id"}}),
    ("clusters[0].cluster.certificate-authority", {"cluster": {"server": "https://kube.example.com",
                                                              "certificate-authority": "/etc/passwd"}}),
]


@pytest.mark.parametrize("field, part", REFUSED, ids=[field for field, _ in REFUSED])
def test_a_kubeconfig_that_runs_or_reads_something_is_a_400_naming_the_field(api, staff, field, part):
    response = api.as_user(staff).post("/api/v1/clusters/", {
        "name": "west", "auth_method": "kubeconfig", "kubeconfig": kubeconfig(**part)}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["extra"]["fields"]["kubeconfig"][0].startswith(f"{field} is not allowed")
    assert "inline" in response.json()["message"]
    assert not Cluster.objects.filter(name="west").exists()


def test_an_exec_kubeconfig_is_refused_and_runs_nothing(api, staff, tmp_path):
    marker = tmp_path / "ran"

    response = api.as_user(staff).post("/api/v1/clusters/", {
        "name": "west", "auth_method": "kubeconfig", "kubeconfig": kubeconfig(user=exec_writing(marker))},
        format="json")

    assert response.status_code == 400
    assert not marker.exists()


def test_the_admin_form_refuses_it_too(tmp_path):
    form = ClusterForm(data={"name": "west", "auth_method": "kubeconfig", "ingress_class": "nginx", "labels": "{}",
                             "kubeconfig": kubeconfig(user={"tokenFile": "/etc/shadow"})})

    assert not form.is_valid()
    assert form.errors["kubeconfig"][0].startswith("users[0].user.tokenFile is not allowed")


def test_an_inline_kubeconfig_is_accepted(api, staff):
    response = api.as_user(staff).post("/api/v1/clusters/", {
        "name": "west", "auth_method": "kubeconfig", "kubeconfig": kubeconfig()}, format="json")

    assert response.status_code == 201, response.json()


def test_an_exec_kubeconfig_already_stored_is_refused_when_used_and_runs_nothing(sandbox, tmp_path):
    # given a kubeconfig stored before the rule existed (saved without validation), which would work
    marker = tmp_path / "ran"
    stored = kubeconfig(cluster={"server": sandbox.url}, user=exec_writing(marker, SANDBOX_TOKEN))
    cluster = Cluster.objects.create(name="old", auth_method="kubeconfig", kubeconfig=stored,
                                     api_server=sandbox.url)
    # when a worker's service reaches the cluster through it
    with pytest.raises(PermanentError, match=r"cluster old: its kubeconfig is refused: users\[0\]\.user\.exec"):
        cluster_health(cluster_id=cluster.id)
    # then nothing ran
    assert not marker.exists()
