from django.core.management.base import BaseCommand

from deployments.sandbox import SandboxCluster
from deployments.sandbox.controller import DEFAULT_TIME_SCALE


class Command(BaseCommand):
    help = "Run the sandbox cluster: a Kubernetes API emulator for demos and tests (not a cluster)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=6443)
        parser.add_argument("--rollout-delay", type=float, default=1.0, help="Seconds a simulated rollout takes.")
        parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                            help="Seconds each Kubernetes second of a spec lasts (progress deadlines, HPA windows).")
        parser.add_argument("--token", default="sandbox-token", help="Bearer token clients must send ('' = none).")

    def handle(self, *args, host, port, rollout_delay, time_scale, token, **options):
        sandbox = SandboxCluster(host=host, port=port, rollout_delay=rollout_delay, token=token or None,
                                 time_scale=time_scale)
        self.stdout.write(f"Sandbox cluster (Kubernetes API emulator) listening on {sandbox.url}")
        sandbox.serve_forever()
