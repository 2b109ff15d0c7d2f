"""An emulated Kubernetes API server on loopback: enough for kopf, kubectl and the `kubernetes` client.

Why not kmock: kmock 0.8 assigns no server-owned metadata, has no PUT/deletecollection/generateName,
lets `/status` patches change spec, ignores resourceVersion in watches and label selectors, cannot learn
CRDs from YAML, and its routing slows with every request served (5 ms -> 230 ms after ~2,000 requests).
Patching all of that would touch most of kmock; this package is written directly on aiohttp (already a
kopf dependency) around dict-keyed storage, so request cost stays flat (see `bench/bench_apiserver.py`).

What is emulated: discovery (`/version`, `/api`, `/apis`, legacy APIResourceLists with shortNames,
categories, verbs and the `status` subresource) for built-in kinds (Namespace, Secret, ConfigMap,
ServiceAccount, Service, core and events.k8s.io Events, batch Jobs and CronJobs, coordination Leases,
CustomResourceDefinitions) and for CRDs learned the moment they are created (forgotten when deleted,
together with their objects); uid, one global resourceVersion counter, generation (bumped when anything
but metadata/status changes), creationTimestamp; 409 Conflict on a stale resourceVersion; create (with
generateName), get, list (per namespace and across namespaces, with limit/continue), replace,
delete, deletecollection, JSON merge patch, JSON patch, strategic merge patch (approximated: lists with a
well-known merge key such as containers/env/ownerReferences/conditions merge by that key, finalizers merge
as a set, other lists are replaced; `$patch`, `$deleteFromPrimitiveList` honoured, `$retainKeys` and
`$setElementOrder` ignored), server-side apply (approximated: fieldManager required, fields a manager
applied before and no longer sends are removed, conflicts only between Apply managers with `force` to
take over, lists are atomic, managedFields are kept in FieldsV1 form for Apply managers only);
`dryRun=All`; `fieldValidation` Strict/Warn/Ignore for CRD objects; the status subresource; finalizers
and deletionTimestamp; namespace deletion (Terminating until its contents are gone; creating in a
terminating namespace is 403); ownerReference garbage collection when an owner is removed (synchronous,
background propagation, Orphan honoured, Foreground treated as Background); label and field selectors
on list and watch; watches from a resourceVersion with a bounded event log (410 Gone when too old),
bookmarks, `sendInitialEvents`, `timeoutSeconds`; Secret `stringData`; ObjectMeta rules of every kind,
worded as the real server words them (names per kind: DNS-1123 subdomains, Namespace DNS-1123 and Service
DNS-1035 labels, CronJob <= 52 and Job <= 63 characters; label keys and values; 256 KiB of annotations);
CRD structural schemas (defaults, pruning of unknown fields, validation -> 422 Invalid with causes per
field) and CEL `x-kubernetes-validations` (cel-python; transition rules, ratcheting), both turned off by
`validate_schemas=False`; `meta.k8s.io/v1` Tables with CRD additionalPrinterColumns for `kubectl get`;
`/openapi/v3` with CRD schemas (so `kubectl apply` validates through the server and `kubectl explain`
works for custom resources); Status objects for every error.

What is NOT emulated: authentication, authorization and RBAC (every request is allowed; the kubeconfig
token is a placeholder), admission webhooks and admission plugins, `format` checks, CEL cost limits and
the Kubernetes CEL library functions cel-python lacks (a CRD using them is accepted with a warning and
those rules are not enforced; see `cel`), conversion between CRD versions (objects are served
as stored with only `apiVersion` rewritten), real SSA field ownership for non-Apply writers and per-item
ownership in lists, any controller other than GC and namespace deletion (no Pods, kubelet, scheduler,
Job/CronJob controllers, Deployments, Services or endpoints; nothing runs), garbage collection of objects
whose owner never existed (a real GC would delete them after a while), Events shared between `v1` and
`events.k8s.io/v1` (two separate stores here), schemas of built-in kinds beyond ObjectMeta (no
unknown-field or type checks for them), `/openapi/v2` (it needs protobuf), aggregated discovery (legacy
discovery is served instead), protobuf and CBOR (415 on such request bodies), watch-cache semantics of
`resourceVersion` on list (lists always return the latest state), `/scale`, logs/exec/port-forward, and
persistence (state lives in memory only).

Client notes. kubectl asks for aggregated discovery and falls back to the legacy documents served here.
It caches discovery per host:port under `~/.kube/cache`; a new sandbox on a reused port looks like the
old server until kubectl meets an unknown resource and refetches, so give each run its own cache
(`--cache-dir DIR` or `KUBECACHEDIR=DIR`), as the tests do. kubectl sends protobuf for the imperative
`kubectl create namespace|secret|configmap|serviceaccount`; those four kinds are decoded, and other
imperative creates (`kubectl create job|cronjob|deployment`) get 415: use `kubectl apply -f` for them.
`kubectl apply` validates through the server (`fieldValidation=Strict`), so unknown fields are refused for
custom resources only. kopf (`kopf run --standalone`) needs nothing special: it lists, watches from the
list's resourceVersion, patches finalizers/annotations/status with merge patches and posts v1 Events.

Running it: `ApiServer(host, port)` in-process (`await start()`/`await stop()`, or `start_in_thread()`
/`stop_thread()` / `with ApiServer() as api:`), or the CLI `python -m memory_sandbox.apiserver --port N
--kubeconfig PATH` (until SIGTERM/SIGINT), or `SandboxApiProcess` which runs that CLI as a child.
"""

from __future__ import annotations

from .cluster import Cluster
from .kubeconfig import write_kubeconfig
from .process import SandboxApiError, SandboxApiProcess
from .server import ApiServer

__all__ = ["ApiServer", "Cluster", "SandboxApiError", "SandboxApiProcess", "write_kubeconfig"]
