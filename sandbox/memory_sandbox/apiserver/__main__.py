"""CLI: `python -m memory_sandbox.apiserver --port N --kubeconfig PATH`, serving until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .requestlog import ENV_VAR as REQUEST_LOG_ENV
from .server import ApiServer

__all__ = ["main"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m memory_sandbox.apiserver", description="Emulated Kubernetes API on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (read it from the kubeconfig)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for this server here once it listens")
    parser.add_argument(
        "--no-validate", action="store_true", help="do not validate custom resources against CRD schemas"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--request-log",
        default=os.environ.get(REQUEST_LOG_ENV) or None,
        help=f"append one JSON line per request to this file (default: ${REQUEST_LOG_ENV}, else off)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    server = ApiServer(args.host, args.port, validate_schemas=not args.no_validate, request_log=args.request_log)
    await server.start()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    logging.getLogger(__name__).info("sandbox API listening on %s", server.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
