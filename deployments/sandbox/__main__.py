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
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sandbox = SandboxCluster(host=args.host, port=args.port, rollout_delay=args.rollout_delay,
                             token=args.token, time_scale=args.time_scale)
    print(f"Slipway sandbox cluster listening on {sandbox.url} (demos and tests only)", flush=True)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
