"""Slipway sandbox: a small in-memory Kubernetes API server, FOR DEMOS AND TESTS ONLY.

No real Kubernetes runs on Slipway's development and CI machines, so this
package emulates the slice of the Kubernetes API the platform uses, over real
HTTP, closely enough that the official `kubernetes` Python client talks to it
as to a real cluster: discovery and version, namespaces, ConfigMaps, Secrets,
Services, Pods (with logs), ResourceQuotas, Deployments (with `scale` and
`status`), Ingresses, NetworkPolicies, HorizontalPodAutoscalers and, for
Slipway's own manifests, ServiceAccounts, PersistentVolumeClaims,
PodDisruptionBudgets and Jobs (completed by the controller); create, get,
list with label/field selectors, replace, delete; JSON merge, strategic merge
and JSON patches; server-side apply with field-level `managedFields`, list
merges by key and conflicts (`fieldmanager`); strict admission against the
official schemas plus the common semantic rules (`admission`,
`deployments.kubevalidation`); `?dryRun=All`; `/openapi/v2` and `/openapi/v3`;
resourceVersion/generation semantics and `Status` errors like the real
server's. A background controller simulates rollouts (images tagged
`*-broken` never become ready), and `/sandbox/`
endpoints inject faults (503, 429, hangs) and reset state.

It is not a Kubernetes: nothing runs, nothing is persisted, there is no
watch, no RBAC (one optional bearer token), no admission webhooks, no
ReplicaSets. Validation covers the schema and the semantic rules Slipway's
inputs can reach, not every rule of the API server (no immutability rules
beyond a Deployment's selector, no cross-object checks). Server-side apply
does not track status writes, treats subresource apply patches as merge
patches, defaults only `protocol` among list-map keys, and never converts
between API versions; `/openapi/v2` is JSON only (no protobuf); duplicate
fields in a body are not detected (JSON decoding keeps the last). Never point
production code at it or expose it beyond loopback.

    from deployments.sandbox import SandboxCluster

    with SandboxCluster(port=0, rollout_delay=0.2, token="t0ken") as sandbox:
        ...  # kubernetes.client.Configuration(host=sandbox.url, ...)

Run standalone with `python -m deployments.sandbox --port 6443`. It does not
import Django.
"""

from .server import SandboxCluster

__all__ = ["SandboxCluster"]
