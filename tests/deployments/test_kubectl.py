"""kubectl conformance: Debian's kubectl against the sandbox, each answer the one a real API server gives."""


def test_version_names_the_server(kubectl):
    version = kubectl.json("version")
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["gitVersion"].startswith("v1.")


def test_get_namespaces_lists_the_defaults(kubectl):
    names = [ns["metadata"]["name"] for ns in kubectl.json("get", "namespaces")["items"]]
    assert {"default", "kube-system"} <= set(names)
