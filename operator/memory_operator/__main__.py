"""`agent-memory-operator`: run the operator (kopf) against the cluster in KUBECONFIG or in-cluster config."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import kopf

from memory_operator.clients.lease import LeaseTiming

if TYPE_CHECKING:
    from memory_operator.metrics import Metrics

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
    election = parser.add_argument_group(
        "leader election", "run several replicas, one reconciling, the others standing by (a Lease in the "
        "operator's namespace)",
    )  # fmt: skip
    election.add_argument(
        "--leader-elect", action="store_true",
        help="reconcile only while holding the Lease; stand by (answering liveness) until then",
    )  # fmt: skip
    election.add_argument("--leader-elect-lease", default="agent-memory-operator", metavar="NAME",
                          help="the Lease's name (default: %(default)s)")  # fmt: skip
    election.add_argument("--lease-duration", type=float, default=LeaseTiming.duration, metavar="S",
                          help="how long an unrenewed Lease lasts (default: %(default)g)")  # fmt: skip
    election.add_argument("--renew-deadline", type=float, default=LeaseTiming.deadline, metavar="S",
                          help="the leader exits after failing to renew this long (default: %(default)g)")  # fmt: skip
    election.add_argument("--retry-period", type=float, default=LeaseTiming.retry, metavar="S",
                          help="how often the leader renews and a standby tries (default: %(default)g)")  # fmt: skip
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
    try:
        timing = LeaseTiming(args.lease_duration, args.renew_deadline, args.retry_period)
    except ValueError as exc:
        command.error(str(exc))
    kopf.configure(debug=args.debug, quiet=args.quiet, log_format=kopf.LogFormat[args.log_format.upper()])

    def run() -> None:
        kopf.run(
            standalone=True,  # kopf's own peering is off: one replica at a time runs (--leader-elect), or only one
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or None,
            memo=kopf.Memo(metrics=metrics),
            # kopf's default lifecycle runs one handler per processing cycle: a tenant's creation (two handlers)
            # took two cycles, each a PATCH and a watch round trip. All handlers due run in one cycle instead.
            lifecycle=kopf.lifecycles.all_at_once,
        )

    try:
        if args.leader_elect:
            _run_elected(run, args, timing, metrics)
        else:
            run()
    finally:
        if server is not None:
            server.stop()
    return 0


def _run_elected(run: Callable[[], None], args: argparse.Namespace, timing: LeaseTiming, metrics: Metrics) -> None:
    from kubernetes import client as k8s  # noqa: PLC0415 - keep `--help` fast

    from memory_operator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL  # noqa: PLC0415
    from memory_operator.clients.config import api_client  # noqa: PLC0415
    from memory_operator.clients.lease import LeaderElector  # noqa: PLC0415
    from memory_operator.deps import operator_namespace  # noqa: PLC0415
    from memory_operator.election import candidate_identity, run_elected  # noqa: PLC0415

    elector = LeaderElector(
        k8s.CoordinationV1Api(api_client()),
        operator_namespace(),
        args.leader_elect_lease,
        candidate_identity(),
        timing,
        labels={MANAGED_BY_LABEL: MANAGED_BY},
    )
    run_elected(run, elector, liveness_url=args.liveness or None, leading=lambda on: metrics.leader.set(int(on)))


if __name__ == "__main__":
    sys.exit(main())
