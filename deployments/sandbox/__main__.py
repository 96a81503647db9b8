"""`python -m deployments.sandbox`: serve the sandbox in the foreground, without Django."""

from __future__ import annotations

import argparse
import logging

from .controller import DEFAULT_TIME_SCALE
from .server import SandboxCluster


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deployments.sandbox",
                                     description="Serve the Slipway Kubernetes sandbox (demos and tests only).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (keep it on loopback)")
    parser.add_argument("--port", type=int, default=6443, help="port to listen on (0 picks a free one)")
    parser.add_argument("--rollout-delay", type=float, default=1.0, help="seconds until simulated pods are ready")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                        help="seconds each Kubernetes second of a spec lasts (progress deadlines, HPA windows)")
    parser.add_argument("--token", default=None, help="bearer token clients must send (default: none)")
    parser.add_argument("--http", action="store_true", help="serve plain HTTP instead of HTTPS under a fresh CA")
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig for the sandbox (CA data, token) here")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sandbox = SandboxCluster(host=args.host, port=args.port, rollout_delay=args.rollout_delay,
                             token=args.token, time_scale=args.time_scale, tls=not args.http)
    print(f"Slipway sandbox cluster listening on {sandbox.url} (demos and tests only)", flush=True)
    if args.kubeconfig:
        print(f"kubeconfig written to {sandbox.write_kubeconfig(args.kubeconfig)}", flush=True)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
