"""`agent-memory-operator`: run the operator (kopf) against the cluster in KUBECONFIG or in-cluster config."""

from __future__ import annotations

import argparse
import os
import sys

import kopf

__all__ = ["METRICS_ENV", "main", "parser"]

METRICS_ENV = "AGENTMEMORY_METRICS_ADDRESS"


def parser() -> argparse.ArgumentParser:
    """The command line (the image's CMD is checked against it)."""
    parser = argparse.ArgumentParser(prog="agent-memory-operator", description=__doc__)
    parser.add_argument(
        "-n", "--namespace", action="append", default=[],
        help="watch MemoryTenants only in this namespace (repeatable); default: all namespaces",
    )  # fmt: skip
    parser.add_argument(
        "--admin-secret-namespace", action="append", default=[], metavar="NS",
        help="also read MemoryStore admin and CA Secrets from this namespace (repeatable); default: only the "
        "operator's own namespace ($AGENTMEMORY_NAMESPACE, else the Pod's, else memory-system)",
    )  # fmt: skip
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL ('' to disable)"
    )
    parser.add_argument(
        "--no-watch-secrets", dest="watch_secrets", action="store_false",
        help="do not watch the Secrets the operator wrote (it then needs no list/watch on Secrets, and an edited "
        "tenant Secret is repaired by the periodic pass instead of at once)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only (default: INFO)")
    parser.add_argument("--verbose", "--debug", dest="debug", action="store_true", help="log at DEBUG")
    parser.add_argument("--log-format", choices=["plain", "full", "json"], default="full", help="log line format")
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get(METRICS_ENV, ""),
        metavar="[HOST]:PORT",
        help=f"serve Prometheus metrics here, e.g. :9090 (default: ${METRICS_ENV}, else off)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    if args.admin_secret_namespace:  # read once at start-up by handlers.startup, with the variable's own list
        from memory_operator.deps import ADMIN_NAMESPACES_ENV  # noqa: PLC0415 - keep `--help` fast

        known = [ns for ns in os.environ.get(ADMIN_NAMESPACES_ENV, "").split(",") if ns]
        os.environ[ADMIN_NAMESPACES_ENV] = ",".join([*known, *args.admin_secret_namespace])

    if not args.watch_secrets:  # read when the handlers register, just below
        from memory_operator.deps import WATCH_SECRETS_ENV  # noqa: PLC0415 - keep `--help` fast

        os.environ[WATCH_SECRETS_ENV] = "false"

    import memory_operator.handlers  # noqa: F401, PLC0415 - registers the handlers with kopf
    from memory_operator.metrics import Metrics  # noqa: PLC0415 - keep `--help` fast

    metrics = Metrics()
    server = None
    if args.metrics_address:
        try:
            server = metrics.serve(args.metrics_address)
        except (ValueError, OSError) as exc:
            command.error(f"--metrics-address: {exc}")
    kopf.configure(debug=args.debug, quiet=args.quiet, log_format=kopf.LogFormat[args.log_format.upper()])
    try:
        kopf.run(
            standalone=True,  # one replica with the Recreate strategy; no peering
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or None,
            memo=kopf.Memo(metrics=metrics),
        )
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
