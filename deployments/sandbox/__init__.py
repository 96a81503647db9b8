"""Slipway sandbox: a small in-memory Kubernetes API server, FOR DEMOS AND TESTS ONLY.

No real Kubernetes runs on Slipway's development and CI machines, so this
package emulates the slice of the Kubernetes API the platform uses, over real
HTTP, closely enough that the official `kubernetes` Python client talks to it
as to a real cluster: discovery and version, namespaces, ConfigMaps, Secrets,
Services, Pods (with logs), ResourceQuotas, Deployments and ReplicaSets (with
`scale` and `status`), Ingresses, NetworkPolicies, HorizontalPodAutoscalers,
Events (core/v1 and events.k8s.io/v1) and, for Slipway's own manifests,
ServiceAccounts, PersistentVolumeClaims, PodDisruptionBudgets and Jobs
(completed by the controller); create, get, list with label/field selectors,
replace, delete with `propagationPolicy` and finalizers; JSON merge, strategic
merge and JSON patches; server-side apply with field-level `managedFields`,
list merges by key and conflicts (`fieldmanager`); strict admission against the
official schemas plus the common semantic rules (`admission`,
`deployments.kubevalidation`) and ResourceQuota admission; `?dryRun=All`;
`/openapi/v2` and `/openapi/v3`; resourceVersion/generation semantics and
`Status` errors like the real server's. Reads behave as a client expects (see
`reads`): watch on every list endpoint (resourceVersion, bookmarks,
`410 Expired` past a bounded history, `sendInitialEvents`), `limit`/`continue`
pagination consistent at the first page's version, `Table` output with the
real server's columns, field selectors only where the real server has them.
With `tls=True` (the command line's default) it serves HTTPS under a CA made
at start and hands out a kubeconfig (`tls`). Background controllers
(`controller`) run Deployments through ReplicaSets (revisions, rollback, pause,
maxSurge/maxUnavailable, the progress deadline; images tagged `*-broken` never
become ready), the ReplicaSets' pods, an HPA on a simulated CPU utilisation,
Jobs, the garbage collector, a scheduler and a kubelet, and record Events;
`/sandbox/` endpoints inject faults (503, 429, hangs) and reset state.

It is not a Kubernetes: nothing runs, nothing is persisted, there is no RBAC
(one optional bearer token), no admission webhooks. Validation covers the
schema and the semantic rules Slipway's inputs can reach, not every rule of
the API server (no immutability rules beyond a Deployment's selector, no
cross-object checks). Server-side apply does not track status writes, treats
subresource apply patches as merge patches, defaults only `protocol` among
list-map keys, and never converts between API versions; `/openapi/v2` is JSON
only (no protobuf); duplicate fields in a body are not detected (JSON decoding
keeps the last). Of the read API it does not emulate: the deprecated `/watch/`
path prefix, protobuf and `PartialObjectMetadata(List)` output (JSON is served
instead), `Table` v1beta1, a reset that clients can see as such (a
`/sandbox/reset` ends open watches and makes older versions 410), and the watch
cache's per-resource history (one history of the last N changes serves every
kind). A watch whose client went away ends within the bookmark interval, not at
once. Of the controllers' behaviour it does not emulate: pod graceful
termination (pods go at once, never Terminating), nodes (`spec.nodeName` stays
unset), readiness probes (readiness is the image tag), the HPA's scaling
policies and 15 s sync period (it runs every tick), metrics other than the
annotated CPU figure, autoscaling/v1 HPAs, StatefulSets and DaemonSets, Jobs'
pods, background deletion being eventual (dependents go at once), adoption by
`matchExpressions` (matchLabels only), and the real server's single Event
storage (the two Event versions are written side by side). Never point
production code at it or expose it beyond loopback.

    from deployments.sandbox import SandboxCluster

    with SandboxCluster(port=0, rollout_delay=0.2, time_scale=0.4, token="t0ken", tls=True) as sandbox:
        ...  # kubernetes.client.Configuration(host=sandbox.url, ...), CA in sandbox.ca_pem

Run standalone with `python -m deployments.sandbox --port 6443 [--http]
[--kubeconfig PATH]`. It does not import Django.
"""

from .server import SandboxCluster

__all__ = ["SandboxCluster"]
