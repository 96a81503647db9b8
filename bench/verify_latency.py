"""Benchmark: from "rollout complete" to "verify says succeeded", by watch (now) and by 1-second polls (before).

Run by hand, never in CI; it needs no database::

    .venv/bin/python bench/verify_latency.py [--trials 20] [--poll 1.0] [--tls]

What runs: one sandbox cluster in this process (rollout delay 1.5 s). For each
trial a Deployment is created, then, after a random 0-1 s (so a poll's phase
against the rollout is random, as in life), the verify loop starts: either
Slipway's `KubeClient.rollout_follow` (one read, then one watch) or the loop
verify ran before, re-read here verbatim (read the status, sleep `--poll`
seconds, `SLIPWAY_VERIFY_POLL_SECONDS`' default, until done). A thread in the
sandbox's process, woken by the store's change log, notes when the controller
wrote the status that completes the rollout; the latency is from that moment
to the loop returning "done". It also counts the API requests each loop made.

The ceiling is the best any client could do: a bare HTTP stream of the same
watch read by urllib3, no Slipway code, returning at the first complete
status. The release's last step (recording success) is the same database
work either way and is not part of this figure.
"""
import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import production_like_environment  # noqa: E402

production_like_environment()

import django  # noqa: E402

django.setup()

import urllib3  # noqa: E402

from deployments.kube import ClusterAccess, KubeClient, rollout_status_of  # noqa: E402
from deployments.sandbox import SandboxCluster  # noqa: E402
from deployments.sandbox import resources as r  # noqa: E402

TOKEN = "bench-token"
NAMESPACE = "bench"


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {"metadata": {"name": name}, "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}


def completion_time(sandbox: SandboxCluster, name: str, since: int, found: dict) -> None:
    """Note when the store first held a complete status for `name` (runs in a thread of the sandbox's process)."""
    history, position = sandbox.store.history, since
    epoch = history.epoch
    while history.wait(position, epoch, 10):
        changes, position = history.since(position, r.DEPLOYMENTS)
        for change in changes:
            if change.key == (NAMESPACE, name) and change.type != "DELETED" and rollout_status_of(change.object).done:
                found["at"] = time.monotonic()
                return


def poll_loop(client: KubeClient, name: str, interval: float) -> None:
    """The verify loop before this change: read the status, sleep, until done."""
    while not client.rollout_status(NAMESPACE, name).done:
        time.sleep(interval)


def watch_loop(client: KubeClient, name: str, interval: float) -> None:
    for status in client.rollout_follow(NAMESPACE, name, seconds=60, poll_interval=interval):
        if status.done:
            return


def raw_watch(pool: urllib3.PoolManager, url: str, name: str, version: str) -> None:
    """The ceiling: the watch stream itself, read without any client library."""
    response = pool.request(
        "GET", f"{url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments?watch=true&resourceVersion={version}"
               f"&fieldSelector=metadata.name%3D{name}", headers={"Authorization": f"Bearer {TOKEN}"},
        preload_content=False)
    buffer = b""
    for chunk in response.stream(1024):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line and rollout_status_of(json.loads(line)["object"]).done:
                response.release_conn()
                return


def trial(sandbox: SandboxCluster, client: KubeClient, pool: urllib3.PoolManager, mode: str, number: int,
          interval: float) -> tuple[float, int]:
    name = f"{mode}-{number}"
    created = sandbox.store.create(r.DEPLOYMENTS, NAMESPACE, deployment(name))
    found: dict = {}
    noting = threading.Thread(target=completion_time,
                              args=(sandbox, name, int(created["metadata"]["resourceVersion"]) - 1, found))
    noting.start()
    time.sleep(random.uniform(0, 1))
    sandbox.app.requests.clear()
    if mode == "poll":
        poll_loop(client, name, interval)
    elif mode == "watch":
        watch_loop(client, name, interval)
    else:
        raw_watch(pool, sandbox.url, name, created["metadata"]["resourceVersion"])
    returned = time.monotonic()
    requests = len(sandbox.app.requests)
    noting.join()
    sandbox.store.delete(r.DEPLOYMENTS, NAMESPACE, name)
    return returned - found["at"], requests


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {1000 * statistics.median(ordered):7.1f} ms, p90 {1000 * p90:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0, help="the poll interval of the old loop (seconds)")
    parser.add_argument("--tls", action="store_true", help="serve the sandbox over HTTPS")
    args = parser.parse_args()
    random.seed(16)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with SandboxCluster(port=0, rollout_delay=1.5, token=TOKEN, tls=args.tls) as sandbox:
        sandbox.store.create(r.NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
        client = KubeClient(ClusterAccess(name="bench", api_server=sandbox.url, token=TOKEN,
                                          ca_certificate=sandbox.ca_pem or ""))
        ca_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-sandbox-ca-{os.getpid()}.crt"
        ca_file.write_text(sandbox.ca_pem or "")
        pool = urllib3.PoolManager(ca_certs=str(ca_file) if args.tls else None)
        results: dict[str, list[tuple[float, int]]] = {"poll": [], "watch": [], "ceiling": []}
        for number in range(args.trials):
            for mode in results:  # interleaved, so machine load hits every mode alike
                results[mode].append(trial(sandbox, client, pool, mode, number, args.poll))
        ca_file.unlink()
    medians = {}
    print(f"\n{args.trials} rollouts per mode, 'rollout complete' -> verify returns; "
          f"sandbox over {'HTTPS' if args.tls else 'HTTP'}")
    for mode, label in (("poll", f"before: poll every {args.poll:g} s"), ("watch", "now: watch (rollout_follow)"),
                        ("ceiling", "ceiling: raw watch stream")):
        latencies = [latency for latency, _ in results[mode]]
        requests = statistics.mean(count for _, count in results[mode])
        medians[mode] = statistics.median(latencies)
        print(f"  {label:32} {summary(latencies)}, {requests:5.1f} API requests per verify")
    print(f"  before ÷ now: {medians['poll'] / medians['watch']:.1f}× (median); "
          f"now ÷ ceiling: {medians['watch'] / medians['ceiling']:.2f}× (median)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
