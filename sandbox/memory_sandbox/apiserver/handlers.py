"""HTTP layer: routes, URL parsing, content negotiation and query options around `Cluster`.

Routes are a fixed handful registered once; resource URLs are resolved by dict lookups in the registry,
so routing cost is constant however many objects or CRDs exist.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import discovery, errors, openapi, protobuf, tables
from .cluster import Cluster, ListResult, WriteOptions
from .requestlog import RequestLog
from .resources import ResourceType, VersionDef
from .selectors import Selector, parse_field_selector, parse_label_selector
from .watch import DEFAULT_TIMEOUT, WatchRequest, serve_watch

__all__ = ["build_app"]

JsonObj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)
JSON_TYPES = (
    "application/json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
)


@dataclass(frozen=True)
class Target:
    """A resource URL taken apart: `namespace` None means cluster-wide (or all namespaces)."""

    rtype: ResourceType
    version: str
    namespace: str | None
    name: str
    subresource: str

    @property
    def vdef(self) -> VersionDef:
        vdef = self.rtype.version(self.version)
        assert vdef is not None
        return vdef

    @property
    def object_namespace(self) -> str:
        return self.namespace or ""


def json_response(body: JsonObj, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )
    for warning in warnings or ():
        response.headers.add("Warning", f'299 - "{warning.replace(chr(34), chr(92) + chr(34))}"')
    return response


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Status object, the only error shape Kubernetes clients understand."""
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return json_response(exc.status(), exc.code)
    except web.HTTPNotFound:
        return json_response(
            errors.ApiError(404, "NotFound", "the server could not find the requested resource").status(), 404
        )
    except web.HTTPMethodNotAllowed:
        return json_response(
            errors.ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            ).status(),
            405,
        )
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path_qs)
        return json_response(
            errors.ApiError(
                500, "InternalError", "an error on the server has prevented the request from succeeding"
            ).status(),
            500,
        )


class Handlers:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    # -- discovery & openapi ---------------------------------------------------------------------------
    async def version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version_info())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def api(self, request: web.Request) -> web.Response:
        host = request.host or "127.0.0.1"
        return json_response(discovery.api_versions(host))

    async def apis(self, request: web.Request) -> web.Response:
        return json_response(discovery.api_group_list(self.cluster.registry))

    async def api_group(self, request: web.Request) -> web.Response:
        return json_response(_found(discovery.api_group(self.cluster.registry, request.match_info["group"])))

    async def core_resources(self, request: web.Request) -> web.Response:
        return json_response(_found(discovery.api_resource_list(self.cluster.registry, "", "v1")))

    async def group_resources(self, request: web.Request) -> web.Response:
        info = request.match_info
        return json_response(_found(discovery.api_resource_list(self.cluster.registry, info["group"], info["version"])))

    async def openapi_root(self, request: web.Request) -> web.Response:
        return json_response(openapi.openapi_v3_root(self.cluster.registry))

    async def openapi_document(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].split("/")
        if parts[:1] == ["api"] and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            raise web.HTTPNotFound()
        return json_response(_found(openapi.openapi_v3_document(self.cluster.registry, group, version)))

    # -- resources -------------------------------------------------------------------------------------
    async def resource(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        target = self._target(info.get("group", ""), info.get("version", "v1"), info["tail"])
        method = request.method
        if method == "GET":
            return await (self._read_one(request, target) if target.name else self._read_many(request, target))
        if method == "POST" and not target.name:
            return await self._create(request, target)
        if method == "PUT" and target.name:
            return await self._replace(request, target)
        if method == "PATCH" and target.name:
            return await self._patch(request, target)
        if method == "DELETE":
            return await (self._delete(request, target) if target.name else self._delete_collection(request, target))
        raise errors.method_not_allowed(method, target.rtype.qualified)

    def _target(self, group: str, version: str, tail: str) -> Target:
        parts = [p for p in tail.split("/") if p]
        namespace = None
        if len(parts) >= 3 and parts[0] == "namespaces":
            candidate = self.cluster.registry.lookup(group, version, parts[2])
            if candidate is not None and candidate.namespaced:
                namespace, parts = parts[1], parts[2:]
        rtype = self.cluster.registry.lookup(group, version, parts[0]) if parts and len(parts) <= 3 else None
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise web.HTTPNotFound()
        name = parts[1] if len(parts) > 1 else ""
        subresource = parts[2] if len(parts) > 2 else ""
        vdef = rtype.version(version)
        if subresource and not (subresource == "status" and vdef is not None and vdef.status_subresource):
            raise web.HTTPNotFound()
        if rtype.namespaced and name and namespace is None:
            raise web.HTTPNotFound()
        return Target(rtype, version, namespace, name, subresource)

    def _present(self, target: Target, obj: JsonObj) -> JsonObj:
        """The object as this client's version sees it (no conversion: only apiVersion differs)."""
        api_version = target.rtype.api_version(target.version)
        return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}

    async def _read_one(self, request: web.Request, target: Target) -> web.Response:
        obj = self._present(target, self.cluster.get(target.rtype, target.object_namespace, target.name))
        if _wants_table(request):
            meta = {"resourceVersion": obj["metadata"]["resourceVersion"]}
            return json_response(tables.table(target.rtype, target.vdef, [obj], _include(request), meta))
        return json_response(obj)

    async def _read_many(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        selectors = _selectors(request)
        if query.get("watch") in ("true", "1"):
            return await serve_watch(request, self.cluster.store, self._watch_request(request, target, selectors))
        limit = _int(query.get("limit", "0"), "limit")
        result = self.cluster.list_objects(target.rtype, target.namespace, selectors, limit, query.get("continue", ""))
        return json_response(self._list_body(request, target, result))

    def _list_body(self, request: web.Request, target: Target, result: ListResult) -> JsonObj:
        meta: JsonObj = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
            meta["remainingItemCount"] = result.remaining
        items = [self._present(target, obj) for obj in result.items]
        if _wants_table(request):
            return tables.table(target.rtype, target.vdef, items, _include(request), meta)
        api_version = target.rtype.api_version(target.version)
        return {"kind": f"{target.rtype.kind}List", "apiVersion": api_version, "metadata": meta, "items": items}

    def _watch_request(self, request: web.Request, target: Target, selectors: list[Selector]) -> WatchRequest:
        query = request.query
        as_table, include = _wants_table(request), _include(request)

        def render(obj: JsonObj) -> JsonObj:
            obj = self._present(target, obj)
            if as_table:
                return tables.table(
                    target.rtype, target.vdef, [obj], include, {"resourceVersion": obj["metadata"]["resourceVersion"]}
                )
            return obj

        return WatchRequest(
            rtype=target.rtype,
            namespace=target.namespace,
            selectors=selectors,
            resource_version=query.get("resourceVersion", ""),
            timeout=float(_int(query.get("timeoutSeconds", "0"), "timeoutSeconds")) or DEFAULT_TIMEOUT,
            bookmarks=query.get("allowWatchBookmarks") == "true",
            initial_events=query.get("sendInitialEvents") == "true",
            render=render,
        )

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        if target.rtype.namespaced and target.namespace is None:
            raise errors.method_not_allowed("POST", target.rtype.qualified)
        opts = _write_options(request)
        body = await _body(request)
        obj = self.cluster.create(target.rtype, target.version, target.object_namespace, body, opts)
        return json_response(self._present(target, obj), 201, opts.warnings)

    async def _replace(self, request: web.Request, target: Target) -> web.Response:
        opts = _write_options(request)
        body = await _body(request)
        obj = self.cluster.replace(
            target.rtype, target.version, target.object_namespace, target.name, body, opts, target.subresource
        )
        return json_response(self._present(target, obj), 200, opts.warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        opts = _write_options(request)
        content_type = request.content_type
        existed = self.cluster.store.get(target.rtype.key, target.object_namespace, target.name) is not None
        raw = await request.read()
        obj = self.cluster.patch(
            target.rtype,
            target.version,
            target.object_namespace,
            target.name,
            content_type,
            raw,
            opts,
            target.subresource,
        )
        return json_response(self._present(target, obj), 200 if existed else 201, opts.warnings)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        options = await _delete_options(request)
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or ())
        obj = self.cluster.delete(target.rtype, target.object_namespace, target.name, options, dry_run)
        still_there = self.cluster.store.get(target.rtype.key, target.object_namespace, target.name) is not None
        return json_response(self._present(target, obj), 202 if still_there and not dry_run else 200)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await _delete_options(request)
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or ())
        deleted = self.cluster.delete_collection(target.rtype, target.namespace, _selectors(request), options, dry_run)
        result = ListResult(deleted, str(self.cluster.store.resource_version))
        return json_response(self._list_body(request, target, result))


# -- request parsing ------------------------------------------------------------------------------------
def _found(document: JsonObj | None) -> JsonObj:
    if document is None:
        raise web.HTTPNotFound()
    return document


def _int(value: str, name: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise errors.bad_request(f"invalid {name}: {value!r}") from None


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _include(request: web.Request) -> str:
    return request.query.get("includeObject", "Metadata")


def _dry_run(request: web.Request) -> bool:
    return "All" in request.query.getall("dryRun", [])


def _selectors(request: web.Request) -> list[Selector]:
    found = (
        parse_label_selector(request.query.get("labelSelector", "")),
        parse_field_selector(request.query.get("fieldSelector", "")),
    )
    return [s for s in found if s is not None]


def _write_options(request: web.Request) -> WriteOptions:
    query = request.query
    return WriteOptions(
        dry_run=_dry_run(request),
        field_validation=query.get("fieldValidation", "Warn"),
        field_manager=query.get("fieldManager", ""),
        force=query.get("force") == "true",
    )


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    content_type = request.content_type
    if content_type == protobuf.PROTOBUF:
        return protobuf.decode_object(raw)
    if "protobuf" in content_type or "cbor" in content_type:
        raise errors.unsupported_media_type(content_type)
    try:
        if content_type in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"error decoding the request body: {exc}") from None


async def _delete_options(request: web.Request) -> JsonObj:
    body = await _body(request) if request.can_read_body else None
    options: JsonObj = dict(body) if isinstance(body, dict) else {}
    for name in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if name in request.query:
            options[name] = request.query[name]
    if options.get("orphanDependents") in ("true", True):
        options["orphanDependents"] = True
    return options


def build_app(cluster: Cluster, request_log: RequestLog | None = None) -> web.Application:
    handlers = Handlers(cluster)
    middlewares = [status_errors] if request_log is None else [request_log.middleware, status_errors]
    app = web.Application(middlewares=middlewares, client_max_size=16 * 1024 * 1024)
    if request_log is not None:
        app.on_cleanup.append(request_log.close)
    app.router.add_get("/version", handlers.version)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, handlers.healthz)
    app.router.add_get("/api", handlers.api)
    app.router.add_get("/api/v1", handlers.core_resources)
    app.router.add_get("/apis", handlers.apis)
    app.router.add_get("/apis/{group}", handlers.api_group)
    app.router.add_get("/apis/{group}/{version}", handlers.group_resources)
    app.router.add_get("/openapi/v3", handlers.openapi_root)
    app.router.add_get("/openapi/v3/{path:.+}", handlers.openapi_document)
    app.router.add_route("*", "/api/v1/{tail:.+}", handlers.resource)
    app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", handlers.resource)
    return app
