"""Checks on cluster credentials before they are stored, and again before they are used (pure, no I/O).

A kubeconfig is accepted only with inline data: nothing in it may make a worker run a program
(``exec``, ``auth-provider``) or read a file (``tokenFile``, ``certificate-authority``,
``client-certificate``, ``client-key``); the ``…-data`` fields and ``token`` carry the same inline.
"""
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
    problem = inline_only_problem(document)
    if problem:
        raise ValueError(problem)
    server = str(cluster["server"])
    if not server.startswith(("https://", "http://")):
        raise ValueError(f"cluster server {server!r} is not an http(s) URL.")
    return KubeconfigContext(server=server, document=document)


def validate_ca_bundle(pem: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValueError("is not a PEM-encoded X.509 certificate bundle.") from None


# section -> entry key -> fields that run a program or name a file (with the inline replacement, if any)
REFUSED_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "clusters": ("cluster", {"certificate-authority": "certificate-authority-data"}),
    "users": ("user", {
        "exec": "token or client-certificate-data/client-key-data", "auth-provider": "token",
        "tokenFile": "token", "client-certificate": "client-certificate-data", "client-key": "client-key-data",
    }),
}


def inline_only_problem(document: Any) -> str:
    """Why ``document`` is not an inline-only kubeconfig ("" when it is); names the offending field."""
    if not isinstance(document, dict):
        return ""
    for section, (key, refused) in REFUSED_FIELDS.items():
        for index, entry in enumerate(document.get(section) or []):
            body = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for field, instead in refused.items():
                if field in body:
                    return (f"{section}[{index}].{key}.{field} is not allowed: Slipway accepts only inline "
                            f"credentials (use {instead}); it never runs a program or reads a file named in a "
                            "kubeconfig.")
    return ""
