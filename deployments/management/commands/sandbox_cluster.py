from django.conf import settings
from django.core.management.base import BaseCommand

from deployments.sandbox import SandboxCluster
from deployments.sandbox.controller import DEFAULT_TIME_SCALE


class Command(BaseCommand):
    help = ("Run the sandbox cluster: a Kubernetes API emulator for demos and tests (not a cluster). It serves "
            "HTTPS under a CA generated at start and writes a kubeconfig for it; --http serves plain HTTP.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=6443)
        parser.add_argument("--rollout-delay", type=float, default=1.0, help="Seconds a simulated rollout takes.")
        parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                            help="Seconds each Kubernetes second of a spec lasts (progress deadlines, HPA windows).")
        parser.add_argument("--token", default="sandbox-token", help="Bearer token clients must send ('' = none).")
        parser.add_argument("--http", action="store_true",
                            help="Serve plain HTTP instead of HTTPS (kubectl then sends no token: use --token '').")
        parser.add_argument("--kubeconfig", default=str(settings.VAR_DIR / "sandbox-kubeconfig.yaml"),
                            help="Where to write a kubeconfig for the sandbox (CA data and token).")

    def handle(self, *args, host, port, rollout_delay, time_scale, token, http, kubeconfig, **options):
        sandbox = SandboxCluster(host=host, port=port, rollout_delay=rollout_delay, token=token or None,
                                 time_scale=time_scale, tls=not http)
        path = sandbox.write_kubeconfig(kubeconfig)
        self.stdout.write(f"Sandbox cluster (Kubernetes API emulator) listening on {sandbox.url}; "
                          f"kubeconfig: {path} (kubectl --kubeconfig {path} get pods)")
        sandbox.serve_forever()
