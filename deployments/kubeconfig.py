"""Checks on cluster credentials before they are stored (pure, no I/O)."""
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509


@dataclass(frozen=True)
class KubeconfigContext:
    server: str
    document: dict[str, Any]


def parse(text: str) -> KubeconfigContext:
    """Parse a kubeconfig and resolve its current context to an API server URL.

    Raises ``ValueError`` with a reason a user can act on.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise ValueError("is not a kubeconfig (expected a mapping with clusters, users and contexts).")
    for key in ("clusters", "users", "contexts"):
        if not isinstance(document.get(key), list) or not document[key]:
            raise ValueError(f"has no {key}.")
    contexts = {c.get("name"): c.get("context") or {} for c in document["contexts"] if isinstance(c, dict)}
    current = document.get("current-context") or next(iter(contexts))
    if current not in contexts:
        raise ValueError(f"names current-context {current!r}, which is not among its contexts.")
    clusters = {c.get("name"): c.get("cluster") or {} for c in document["clusters"] if isinstance(c, dict)}
    cluster = clusters.get(contexts[current].get("cluster"))
    if not cluster or not cluster.get("server"):
        raise ValueError(f"context {current!r} does not point to a cluster with a server URL.")
    users = {u.get("name") for u in document["users"] if isinstance(u, dict)}
    if contexts[current].get("user") not in users:
        raise ValueError(f"context {current!r} does not point to a known user.")
    server = str(cluster["server"])
    if not server.startswith(("https://", "http://")):
        raise ValueError(f"cluster server {server!r} is not an http(s) URL.")
    return KubeconfigContext(server=server, document=document)


def validate_ca_bundle(pem: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValueError("is not a PEM-encoded X.509 certificate bundle.") from None
