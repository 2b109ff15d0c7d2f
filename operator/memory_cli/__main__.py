"""kubectl agentmemory: the tenants of agent-memory-operator for people (and, with -o json|yaml, for scripts).

    kubectl agentmemory status [TENANT] [-n NS | -A] [-o text|json|yaml]
    kubectl agentmemory report TENANT [-n NS] [-o text|json] [--html FILE]
    kubectl agentmemory verify-audit TENANT [-n NS] [--redis-url URL] [-o text|json]

Exit codes: 0 all is well; 1 the answer is bad news (a tenant not Ready or not compliant or missing a Secret,
a report with violations, an audit trail that does not verify); 2 usage, API or connection error; 3 not found
(the tenant, or no report yet). It reads with your kubeconfig, as kubectl does, and never writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from memory_cli.html import render_html
from memory_cli.kube import Kube, NotFoundError, current_namespace
from memory_cli.views import healthy, is_ready, render_table, render_tree, tenant_document
from memory_jobs.env import JobEnv, JobEnvError
from memory_jobs.report import audit_summary
from memory_operator.builders.cronjobs import report_configmap_name
from memory_operator.builders.meta import job_credentials_secret_name

__all__ = ["main"]

OK, BAD_NEWS, ERROR, NOT_FOUND = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl agentmemory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--context", help="the kubeconfig context to use (default: the current one)")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, formats: tuple[str, ...]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument("-n", "--namespace", help="the tenant's namespace (default: the context's)")
        sub.add_argument("-o", "--output", choices=formats, default="text")
        return sub

    status = command("status", "a tenant as a tree (store, users, Secrets, jobs, usage, compliance)", FORMATS)
    status.add_argument("tenant", nargs="?", help="without it: a table of the namespace's tenants")
    status.add_argument("-A", "--all-namespaces", action="store_true", help="the table over every namespace")
    report = command("report", "the tenant's last compliance report (Markdown, or its JSON)", ("text", "json"))
    report.add_argument("tenant")
    report.add_argument("--html", metavar="FILE", help="also write it as one self-contained HTML page with charts")
    verify = command("verify-audit", "walk the tenant's audit trail against the operator's seal", ("text", "json"))
    verify.add_argument("tenant")
    verify.add_argument(
        "--redis-url",
        help="reach the store here instead (e.g. redis://127.0.0.1:6379 through kubectl port-forward); the "
        "jobs' credentials from the Secret are kept",
    )
    return parser


FORMATS = ("text", "json", "yaml")


def _print(value: Any, output: str) -> None:
    if output == "yaml":
        print(yaml.safe_dump(value, sort_keys=False).rstrip())
    else:
        print(json.dumps(value, indent=2))


def _status(kube: Kube, args: argparse.Namespace, namespace: str) -> int:
    if args.tenant is None:
        tenants = kube.tenants(None if args.all_namespaces else namespace)
        if args.output != "text":
            _print([{"namespace": t["metadata"].get("namespace"), "name": t["metadata"]["name"],
                     "status": t.get("status") or {}} for t in tenants], args.output)  # fmt: skip
        elif tenants:
            print(render_table(tenants))
        else:
            print(f"No MemoryTenants in {'any namespace' if args.all_namespaces else namespace}.")
        return OK if all(is_ready(t) for t in tenants) else BAD_NEWS
    tenant = kube.tenant(namespace, args.tenant)
    store_name = (tenant.get("status") or {}).get("store") or ((tenant.get("spec") or {}).get("storeRef") or {}).get(
        "name"
    )
    store = kube.store(store_name) if store_name else None
    document = tenant_document(tenant, store, kube.secret_names(namespace), kube.cronjobs(namespace))
    if args.output == "text":
        print(render_tree(document))
    else:
        _print(document, args.output)
    return OK if healthy(document) else BAD_NEWS


def _report(kube: Kube, args: argparse.Namespace, namespace: str) -> int:
    kube.tenant(namespace, args.tenant)  # not found: say so about the tenant, not about a ConfigMap
    try:
        data = kube.configmap(namespace, report_configmap_name(args.tenant))
    except NotFoundError:
        raise NotFoundError(
            f"no compliance report for {namespace}/{args.tenant} yet: its report CronJob has not run, or the "
            "operator has not published the result"
        ) from None
    report = json.loads(data.get("report.json") or "{}")
    if args.html:
        history = json.loads(data.get("history.json") or "[]")
        with open(args.html, "w", encoding="utf-8") as page:
            page.write(render_html(report, history))
        print(f"wrote {args.html}", file=sys.stderr)
    print(data.get("summary.md", "").rstrip() if args.output == "text" else json.dumps(report, indent=2))
    return BAD_NEWS if report.get("violations") else OK


def _verify(kube: Kube, args: argparse.Namespace, namespace: str) -> int:
    kube.tenant(namespace, args.tenant)
    env = JobEnv.from_env(kube.secret_data(namespace, job_credentials_secret_name(args.tenant)))
    url = _redirect(env.redis_url, args.redis_url) if args.redis_url else env.redis_url
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)
    try:
        audit = audit_summary(client, env, int(time.time() * 1000))
    finally:
        client.close()
    integrity = audit["integrity"]
    if args.output == "json":
        print(json.dumps({"tenant": f"{namespace}/{args.tenant}", **audit}, indent=2))
    else:
        verdict = "verifies" if integrity["ok"] else "DOES NOT VERIFY"
        print(f"Audit trail of {namespace}/{args.tenant} ({env.audit_key}): {verdict}")
        held = "held to the operator's seal" if integrity["sealed"] else "not held to a seal (none reached)"
        print(f"  {integrity['checked']} entries checked, {held} (sealed {integrity['sealedAt'] or 'never'}); "
              f"{integrity['unsealed']} newer than the seal, chained but not yet vouched for")  # fmt: skip
        actions = json.dumps(audit["byAction"])
        print(f"  {audit['events']} events by {audit['uniqueActors']} actor(s), by action: {actions}")
        if integrity["reason"]:
            print(f"  {integrity['reason']}" + (f" (entry {integrity['firstBad']})" if integrity["firstBad"] else ""))
    return OK if integrity["ok"] else BAD_NEWS


def _redirect(url: str, to: str) -> str:
    """`url` with the host and port of `to` (a URL or host:port): its user, password and database stay."""
    parts, target = urlsplit(url), urlsplit(to if "//" in to else f"//{to}")
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{target.netloc}" if credentials else target.netloc
    return urlunsplit((target.scheme or parts.scheme, netloc, parts.path, parts.query, parts.fragment))


COMMANDS = {"status": _status, "report": _report, "verify-audit": _verify}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        kube = Kube(args.context)
        namespace = args.namespace or current_namespace(args.context)
        return COMMANDS[args.command](kube, args, namespace)
    except NotFoundError as exc:
        print(f"kubectl agentmemory: {exc}", file=sys.stderr)
        return NOT_FOUND
    except (ConfigException, ApiException, JobEnvError, OSError, redis.RedisError) as exc:
        print(f"kubectl agentmemory: {_describe(exc)}", file=sys.stderr)
        return ERROR


def _describe(exc: Exception) -> str:
    """What went wrong, for stderr: never a Secret's value (redis-py names host and port, not the password)."""
    if isinstance(exc, ConfigException):
        return f"no usable kubeconfig ({exc})"
    if isinstance(exc, ApiException):
        return f"the Kubernetes API answered {exc.status} {exc.reason}"
    if isinstance(exc, JobEnvError):
        return f"the jobs' credentials Secret is not usable: {exc}"
    if isinstance(exc, redis.RedisError):
        return f"the store did not answer: {type(exc).__name__}: {exc}"
    return str(exc)  # OSError: --html FILE not writable


if __name__ == "__main__":
    sys.exit(main())
