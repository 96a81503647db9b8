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
replace, delete with `propagationPolicy` and finalizers, merge and JSON patches
and a simplified server-side apply; resourceVersion/generation semantics and
`Status` errors like the real server's; ResourceQuota admission. Background
controllers (`controller`) run Deployments through ReplicaSets (revisions,
rollback, pause, maxSurge/maxUnavailable, the progress deadline; images tagged
`*-broken` never become ready), the ReplicaSets' pods, an HPA on a simulated
CPU utilisation, Jobs, the garbage collector and a kubelet, and record Events;
`/sandbox/` endpoints inject faults (503, 429, hangs) and reset state.

It is not a Kubernetes: nothing runs, nothing is persisted, there is no
watch, no RBAC (one optional bearer token), no admission webhooks, and
validation covers only common mistakes. Of the controllers' behaviour it does
not emulate: pod graceful termination (pods go at once, never Terminating),
scheduling and nodes, readiness probes (readiness is the image tag), the HPA's
scaling policies and 15 s sync period (it runs every tick), metrics other than
the annotated CPU figure, autoscaling/v1 HPAs, StatefulSets and DaemonSets, Jobs' pods,
background deletion being eventual (dependents go at once), the controllers'
adoption by matchExpressions (matchLabels only), and the real server's single
Event storage (the two Event versions are written side by side). Never point
production code at it or expose it beyond loopback.

    from deployments.sandbox import SandboxCluster

    with SandboxCluster(port=0, rollout_delay=0.2, time_scale=0.4, token="t0ken") as sandbox:
        ...  # kubernetes.client.Configuration(host=sandbox.url, ...)

Run standalone with `python -m deployments.sandbox --port 6443`. It does not
import Django.
"""

from .server import SandboxCluster

__all__ = ["SandboxCluster"]
