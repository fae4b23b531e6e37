#!/usr/bin/python3
"""A Kubernetes API server for the tests: one CRD's objects and core Events, over HTTPS.

No real API server can run on the test machine, so this one follows the API's semantics for
what multinic-bridge uses, closely enough that a client that works against it works against
the real one. Same as the real server:

- HTTPS (TLS 1.2 or later) with a bearer token; anything else gets 401 and a Status.
- One global resourceVersion (a string of an integer) that every write bumps, across all
  objects and kinds; metadata.uid, creationTimestamp; generation 1 on create, bumped when
  anything but metadata and status changes (and once when deletion starts).
- The CRD's resource, namespaced or cluster-scoped, at /apis/<group>/<version>/..., every served
  version; its list (kind <listKind>, items carry apiVersion and kind) with fieldSelector
  (metadata.name, metadata.namespace; = == !=) and labelSelector (= == != in notin exists !);
  the list across all namespaces.
- Watch (?watch=1): a chunked stream of one JSON event per line, ADDED/MODIFIED/DELETED from
  after resourceVersion, or the current objects as ADDED first when resourceVersion is absent
  or "0"; objects that start or stop matching a selector come as ADDED or DELETED; DELETED
  carries the last state with the deletion's resourceVersion; BOOKMARK events every few seconds
  with allowWatchBookmarks=true; the stream ends cleanly after timeoutSeconds. History is
  bounded per resource, as in the watch cache (the last `history` changes): a watch from an
  older resourceVersion gets HTTP 200 and one ERROR event whose object is a Status 410
  Expired ("too old resource version"), as the watch cache answers.
- POST (201; 409 AlreadyExists; generateName; status dropped when /status exists), PUT (the
  body's metadata.resourceVersion is required for custom resources, 409 Conflict when stale,
  404 when absent), PATCH with application/merge-patch+json (RFC 7386) and
  application/json-patch+json (RFC 6902; strategic merge patch only for Events, as for the real
  server's custom resources 415 otherwise); a resourceVersion in the patched object is a
  precondition; an update that changes nothing writes nothing (no new resourceVersion, no
  event).
- The status subresource: PUT/PATCH on /status change only .status, on the object everything
  but .status; an update may not add finalizers to an object being deleted.
- DELETE: with finalizers, deletionTimestamp and deletionGracePeriodSeconds 0 are set (200 with
  the object, MODIFIED); an update that removes the last finalizer then deletes it (DELETED);
  without finalizers it goes at once (200 with a Status Success). DeleteOptions preconditions.
- The CRD's openAPIV3Schema (crdschema.py): unknown fields pruned with a Warning header
  (fieldValidation=Strict refuses them with 400), defaults, nullable, validation of the object
  on writes to it and of .status on writes to /status, refused with 422 Invalid and a Status
  whose details.causes list the field errors in the API server's wording; on updates,
  validation ratcheting as since Kubernetes 1.30 (a value that is invalid but unchanged from
  the stored object does not fail the update).
- Core Events at /api/v1/namespaces/<ns>/events (create, get, list, watch, update, patch,
  delete): typed decoding (unknown fields dropped), the v1 rules on involvedObject.namespace,
  fieldSelector on involvedObject.*, reason, type, source, reportingComponent.
- Errors are always a Status: {"kind": "Status", "apiVersion": "v1", "status": "Failure",
  "message", "reason", "details", "code"}; 404 for unknown paths, 405, 406, 415.
- /version, /healthz, /livez, /readyz and discovery for the CRD's group.

Not covered (the bridge does not use them): CEL rules (x-kubernetes-validations) are NOT
checked, so e.g. the CRD's `metadata.name == spec.nodeName` rule passes here; server-side
apply (application/apply-patch+yaml gets 415); managedFields; dryRun (refused with 400);
list pagination (limit is ignored, as the API allows: the list comes whole, `continue` empty);
resourceVersion/resourceVersionMatch on list and get (always the latest); a watch from a
resourceVersion newer than the server's waits for nothing; namespaces (any name exists);
propagationPolicy (no garbage collector, no foregroundDeletion/orphan finalizers); RBAC,
admission, audit; HTTP/2, protobuf, Table output; events.k8s.io/v1.

For tests: fault switches (fail the next requests with a code, delay answers, hold them until
released, drop open watches abruptly or cleanly, make new watches hang silently, expire the next
watch with 410, compact the history), a record of
every request and counts by (method, path kind), and helpers that change objects as an operator
would. The CLI has the same switches at /_test/faults (JSON POST; no token needed).

    api = ApiServer("crds/multinicnodeconfigs.yaml", token, cert, key)
    api.start(); api.create(obj); api.fail(count=2, code=500, method="PATCH"); api.stop()

    /usr/bin/python3 tests/apiserver/apiserver.py --port 0 --cert C --key K \\
        --token-file T --crd crds/multinicnodeconfigs.yaml --print-port
"""
import argparse
import collections
import copy
import dataclasses
import json
import os
import random
import re
import secrets
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

try:
    from . import crdschema
except ImportError:
    import crdschema

FieldError = crdschema.FieldError
DEFAULT_NAMESPACE = "multinic-system"


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


# --- errors -----------------------------------------------------------------------------------

class ApiError(Exception):
    """A failed request: the HTTP code and the Status the API server answers with."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    @property
    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason}
        if self.details:
            s["details"] = self.details
        s["code"] = self.code
        return s


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def _details(res, name, kind=None):
    d = {"name": name}
    if res.group:
        d["group"] = res.group
    d["kind"] = kind or res.plural
    return d


def not_found(res, name):
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res, name):
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                    _details(res, name))


def conflict(res, name, why="the object has been modified; please apply your changes to "
                            "the latest version and try again"):
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} '
                                     f'"{name}": {why}', _details(res, name))


def invalid(kind_qualified, kind, group, name, errors):
    text = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    details = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [e.cause for e in errors]
    return ApiError(422, "Invalid", f'{kind_qualified} "{name}" is invalid: {text}', details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def path_not_found():
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {})


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def unsupported_media(accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(accepted))


def injected(code):
    reason = REASONS.get(code, "Unknown")
    msg = {500: "Internal error occurred: injected by the test server",
           503: "the server is currently unable to handle the request",
           429: "Too many requests, please try again later.",
           504: "the server was unable to return a response in the time allotted",
           410: "too old resource version (injected)",
           403: 'forbidden (injected): User "system:serviceaccount:test" cannot do this',
           }.get(code, f"injected {code} error")
    headers = {"Retry-After": "1"} if code in (429, 503) else {}
    return ApiError(code, reason, msg, {} if code >= 500 else None, headers)


# --- resources --------------------------------------------------------------------------------

class Resource:
    """A served resource: the CRD's, or core Events."""

    def __init__(self, group, versions, plural, kind, list_kind, namespaced=True,
                 singular="", short_names=(), status=False, crd=False, storage=None):
        self.group, self.plural, self.kind, self.list_kind = group, plural, kind, list_kind
        self.versions = versions  # name -> crdschema.Schema
        self.storage = storage or next(iter(versions))
        self.namespaced, self.singular, self.short_names = namespaced, singular, short_names
        self.status, self.crd = status, crd

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def qualified(self):
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self):
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def api_version(self, version):
        return f"{self.group}/{version}" if self.group else version

    # The real server allows PUT without a resourceVersion for most built-in kinds, never
    # for custom resources; Events may even be created by a PUT.
    @property
    def unconditional_update(self):
        return not self.crd

    @property
    def create_on_update(self):
        return not self.crd


def load_crd(path):
    """The Resource for a CustomResourceDefinition file (YAML or JSON)."""
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    crd = next(d for d in docs if d.get("kind") == "CustomResourceDefinition")
    spec = crd["spec"]
    names = spec["names"]
    versions, storage, status = {}, None, False
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        schema = (v.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        versions[v["name"]] = crdschema.Schema(schema)
        if v.get("storage") or storage is None:
            storage = v["name"]
        if "status" in (v.get("subresources") or spec.get("subresources") or {}):
            status = True
    return Resource(spec["group"], versions, names["plural"], names["kind"],
                    names.get("listKind", names["kind"] + "List"),
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    singular=names.get("singular", names["kind"].lower()),
                    short_names=names.get("shortNames", ()), status=status, crd=True,
                    storage=storage)


_REF = {"type": "object", "properties": {k: {"type": "string"} for k in (
    "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}}
_MICROTIME = {"type": "string", "nullable": True}
# core/v1 Event's fields and types: what the typed decoder keeps.
EVENT_SCHEMA = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
    "metadata": {"type": "object"},
    "involvedObject": _REF, "related": _REF,
    "reason": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"},
    "action": {"type": "string"},
    "source": {"type": "object", "properties": {"component": {"type": "string"},
                                                "host": {"type": "string"}}},
    "firstTimestamp": _MICROTIME, "lastTimestamp": _MICROTIME, "eventTime": _MICROTIME,
    "count": {"type": "integer"},
    "series": {"type": "object", "properties": {"count": {"type": "integer"},
                                                "lastObservedTime": _MICROTIME}},
    "reportingComponent": {"type": "string"}, "reportingInstance": {"type": "string"},
}}
EVENTS = Resource("", {"v1": crdschema.Schema(EVENT_SCHEMA)}, "events", "Event", "EventList",
                  singular="event", short_names=("ev",))
EVENT_FIELDS = {"metadata.name", "metadata.namespace", "involvedObject.kind",
                "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion",
                "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}


# --- selectors --------------------------------------------------------------------------------

def _dig(obj, dotted):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def field_selector(res, text):
    """A predicate for a fieldSelector; 400 for fields the resource does not index."""
    reqs = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        m = re.fullmatch(r"([^!=]+?)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{term}\'')
        field, op, value = m.groups()
        allowed = EVENT_FIELDS if res is EVENTS else {"metadata.name", "metadata.namespace"}
        if field not in allowed:
            raise bad_request(f'field label not supported: {field}')
        reqs.append((field, op != "!=", value))

    def get(obj, field):
        if field == "source":
            return (obj.get("source") or {}).get("component", "")
        v = _dig(obj, field)
        return "" if v is None else str(v)

    return lambda obj: all((get(obj, f) == v) == eq for f, eq, v in reqs)


_LABEL_KEY = r"[A-Za-z0-9_./-]+"
_LABEL_VALUE = r"[A-Za-z0-9_.-]*"


def _split_selector(text):
    """Splits on commas outside parentheses."""
    terms, depth, cur = [], 0, ""
    for c in text:
        depth += (c == "(") - (c == ")")
        if c == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += c
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def label_selector(text):
    """A predicate for a labelSelector: = == != in notin, key and !key."""
    reqs = []
    for term in _split_selector(text or ""):
        m = (re.fullmatch(rf"({_LABEL_KEY})\s+(in|notin)\s*\(([^)]*)\)", term) or
             re.fullmatch(rf"({_LABEL_KEY})\s*(==|=|!=)\s*({_LABEL_VALUE})", term) or
             re.fullmatch(rf"(!?)\s*({_LABEL_KEY})", term))
        if not m:
            raise bad_request(f"unable to parse requirement: invalid label selector '{term}'")
        a, b, *c = m.groups()
        if not c:
            reqs.append((b, "!" if a else "exists", set()))
        elif b in ("in", "notin"):
            reqs.append((a, b, {v.strip() for v in c[0].split(",")}))
        else:
            reqs.append((a, "!=" if b == "!=" else "=", {c[0]}))

    def match(obj):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, op, vals in reqs:
            has, v = key in labels, labels.get(key)
            ok = {"=": has and v in vals, "in": has and v in vals, "exists": has, "!": not has,
                  "!=": not has or v not in vals, "notin": not has or v not in vals}[op]
            if not ok:
                return False
        return True
    return match


# --- patches ----------------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


class JsonPatchError(Exception):
    pass


def _pointer(doc, ptr):
    if ptr == "":
        return None, None
    if not ptr.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {ptr!r}")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]
    parent = doc
    for p in parts[:-1]:
        if isinstance(parent, dict) and p in parent:
            parent = parent[p]
        elif isinstance(parent, list) and p.isdigit() and int(p) < len(parent):
            parent = parent[int(p)]
        else:
            raise JsonPatchError(f"doc is missing path: {ptr!r}")
    return parent, parts[-1]


def json_patch(doc, ops):
    """RFC 6902 on a copy of doc."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise JsonPatchError("a JSON patch is an array of operations")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise JsonPatchError(f"invalid operation {op!r}")
        kind = op["op"]
        if kind in ("move", "copy"):
            src_parent, src_key = _pointer(doc, op["from"])
            value = _get_at(src_parent, src_key, op["from"])
            if kind == "move":
                _remove_at(src_parent, src_key, op["from"])
            doc = _add_at(doc, op["path"], copy.deepcopy(value))
            continue
        parent, key = _pointer(doc, op["path"])
        if kind == "add":
            doc = _add_at(doc, op["path"], copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove_at(parent, key, op["path"])
        elif kind == "replace":
            _get_at(parent, key, op["path"])
            if parent is None:
                doc = copy.deepcopy(op.get("value"))
            elif isinstance(parent, list):
                parent[int(key)] = copy.deepcopy(op.get("value"))
            else:
                parent[key] = copy.deepcopy(op.get("value"))
        elif kind == "test":
            if _get_at(parent, key, op["path"], doc) != op.get("value"):
                raise JsonPatchError(f"testing value {op['path']} failed")
        else:
            raise JsonPatchError(f"unexpected kind of operation {kind!r}")
    return doc


def _get_at(parent, key, ptr, doc=None):
    if parent is None:
        return doc
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent[int(key)]
    raise JsonPatchError(f"doc is missing path: {ptr!r}")


def _remove_at(parent, key, ptr):
    _get_at(parent, key, ptr)
    if isinstance(parent, list):
        del parent[int(key)]
    else:
        del parent[key]


def _add_at(doc, ptr, value):
    parent, key = _pointer(doc, ptr)
    if parent is None:
        return value
    if isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            parent.insert(int(key), value)
        else:
            raise JsonPatchError(f"index out of range in {ptr!r}")
    elif isinstance(parent, dict):
        parent[key] = value
    else:
        raise JsonPatchError(f"doc is missing path: {ptr!r}")
    return doc


# --- metadata checks --------------------------------------------------------------------------

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _name_errors(res, name):
    if res.crd:
        if len(name) > 253:
            return [FieldError("invalid", "metadata.name", name,
                               "must be no more than 253 characters")]
        if not DNS1123_SUBDOMAIN.fullmatch(name):
            return [FieldError("invalid", "metadata.name", name, (
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"))]
        return []
    if name in (".", "..") or "/" in name or "%" in name:
        return [FieldError("invalid", "metadata.name", name,
                           'may not be \'.\' or \'..\' and may not contain \'/\' or \'%\'')]
    return []


def _qualified_name_errors(field, value):
    prefix, _, name = value.rpartition("/")
    if (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix))) or \
            not name or len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        return [FieldError("invalid", field, value,
                           "name part must consist of alphanumeric characters, '-', '_' or "
                           "'.', and must start and end with an alphanumeric character")]
    return []


def _meta_errors(meta):
    errs = []
    for k, v in (meta.get("labels") or {}).items():
        errs += _qualified_name_errors("metadata.labels", k)
        if v and (len(v) > 63 or not QUALIFIED_NAME.fullmatch(v)):
            errs.append(FieldError("invalid", "metadata.labels", v,
                                   "a valid label must be an empty string or consist of "
                                   "alphanumeric characters, '-', '_' or '.', and must start "
                                   "and end with an alphanumeric character"))
    for i, f in enumerate(meta.get("finalizers") or []):
        errs += _qualified_name_errors(f"metadata.finalizers[{i}]", f)
    return errs


def _decode_meta_types(meta):
    """What Go's decoding into ObjectMeta refuses with 400."""
    def fail(field, want):
        raise bad_request(f"json: cannot unmarshal into Go struct field ObjectMeta.metadata."
                          f"{field} of type {want}")
    if not isinstance(meta, dict):
        fail("", "v1.ObjectMeta")
    for k in ("name", "generateName", "namespace", "uid", "resourceVersion",
              "creationTimestamp", "deletionTimestamp"):
        if k in meta and meta[k] is not None and not isinstance(meta[k], str):
            fail(k, "string")
    for k in ("labels", "annotations"):
        v = meta.get(k)
        if v is not None and not (isinstance(v, dict) and
                                  all(isinstance(x, str) for x in v.values())):
            fail(k, "map[string]string")
    f = meta.get("finalizers")
    if f is not None and not (isinstance(f, list) and all(isinstance(x, str) for x in f)):
        fail("finalizers", "[]string")
    for k in ("generation", "deletionGracePeriodSeconds"):
        if k in meta and meta[k] is not None and (not isinstance(meta[k], int) or
                                                  isinstance(meta[k], bool)):
            fail(k, "int64")
    for k in [k for k, v in meta.items() if v is None]:
        del meta[k]


def _event_errors(ev, ns):
    """core/v1 Event validation as for a v1 request (legacy rules)."""
    errs = []
    inv_ns = (ev.get("involvedObject") or {}).get("namespace", "")
    if not ev.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and inv_ns != ns):
            errs.append(FieldError("invalid", "involvedObject.namespace", inv_ns,
                                   "does not match event.namespace"))
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(FieldError("invalid", "involvedObject.namespace", inv_ns,
                                   "does not match event.namespace"))
        for field, limit in (("reportingComponent", 0), ("reportingInstance", 128),
                             ("action", 128), ("reason", 128)):
            if not ev.get(field):
                errs.append(FieldError("required", "source" if field == "reportingComponent"
                                       else field))
            elif limit and len(ev[field]) > limit:
                errs.append(FieldError("invalid", field, "",
                                       f"can have at most {limit} characters"))
    if len(ev.get("message") or "") > 1024 and ev.get("eventTime"):
        errs.append(FieldError("invalid", "message", "", "can have at most 1024 characters"))
    return errs


# --- the store --------------------------------------------------------------------------------

@dataclasses.dataclass
class Change:
    rv: int
    res: tuple
    namespace: str
    type: str
    object: dict
    prev: dict


class Store:
    """Objects, the global resourceVersion and the bounded history that watches read."""

    def __init__(self, history, first_rv=1000):
        self.cond = threading.Condition()
        self.rv = first_rv
        self.objects = {}  # (group, plural, namespace, name) -> object; never mutated in place
        # Per resource, as the watch cache keeps it: Events do not push a CRD's changes out.
        self.history = collections.defaultdict(collections.deque)
        self.history_limit = history
        self.first_rv = first_rv
        self.floors = {}  # a watch can start from a resource's floor or later
        self.expire_watches = 0

        self.seq = 0  # bumped on every change that someone may wait for

    def floor(self, res_key):
        return self.floors.get(res_key, self.first_rv)

    def notify(self):
        with self.cond:
            self.seq += 1
            self.cond.notify_all()

    def commit(self, res, ns, name, type_, obj, prev):
        """Stores obj (or deletes, type_ DELETED) under a new resourceVersion; returns it."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        key = res.key + (ns, name)
        if type_ == "DELETED":
            del self.objects[key]
        else:
            self.objects[key] = obj
        history = self.history[res.key]
        history.append(Change(self.rv, res.key, ns, type_, obj, prev))
        while len(history) > self.history_limit:
            self.floors[res.key] = history.popleft().rv
        self.notify()
        return obj

    def compact(self):
        with self.cond:
            for key in set(self.history) | set(self.floors):
                self.history[key].clear()
                self.floors[key] = self.rv
            self.first_rv = self.rv
            self.notify()


# --- the API ----------------------------------------------------------------------------------

class Api:
    """The operations, shared by the HTTP handlers and the in-process helpers."""

    def __init__(self, crd, history, validate=True):
        self.crd = crd
        self.resources = {crd.key: crd, EVENTS.key: EVENTS}
        self.store = Store(history)
        self.validate = validate
        self.prune = True

    # Decoding: kind and apiVersion, ObjectMeta's types, pruning, defaulting.
    def decode(self, res, version, obj, field_validation="Warn", require_kind=None):
        if not isinstance(obj, dict):
            raise bad_request(f"Object 'Kind' is missing in '{dumps(obj)}'")
        want = res.api_version(version)
        if require_kind is None:
            require_kind = res.crd
        if require_kind and (not obj.get("kind") or not obj.get("apiVersion")):
            raise bad_request(f"Object 'Kind' is missing in '{dumps(obj)[:200]}'")
        if obj.get("apiVersion", want) != want:
            raise bad_request(f"the API version in the data ({obj['apiVersion']}) does not "
                              f"match the expected API version ({want})")
        if obj.get("kind", res.kind) != res.kind:
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the "
                              f"expected kind ({res.kind})")
        obj["apiVersion"], obj["kind"] = want, res.kind
        _decode_meta_types(obj.setdefault("metadata", {}))
        schema = res.versions[version]
        dropped = schema.prune(obj) if (self.prune or not res.crd) else []
        if not res.crd:
            errs = schema.validate(obj)
            if errs:
                raise bad_request(f"{res.kind} in version \"{version}\" cannot be handled as "
                                  f"a {res.kind}: {errs[0]}")
        if dropped and field_validation == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(
                f'unknown field "{d}"' for d in dropped))
        if res.crd:
            schema.default(obj)
        if field_validation == "Ignore":
            return []
        return [f'unknown field "{d}"' for d in dropped]

    def _schema_errors(self, res, version, obj, part, validate):
        if not res.crd:
            return _event_errors(obj, obj["metadata"].get("namespace", "")) \
                if res is EVENTS else []
        if validate is None:
            validate = self.validate
        return res.versions[version].validate(obj, part) if validate else []

    def _invalid(self, res, name, errs):
        return invalid(res.kind_qualified, res.kind, res.group, name, errs)

    def _ns(self, res, ns):
        return ns if res.namespaced else ""

    # --- create, get, list ---
    def create(self, res, version, ns, obj, field_validation="Warn", validate=None):
        ns = self._ns(res, ns)
        warnings = self.decode(res, version, obj, field_validation)
        meta = obj["metadata"]
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        if res.status:
            obj.pop("status", None)
        if res.crd:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"][:58] + "".join(
                random.choice(NAME_CHARS) for _ in range(5))
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        name = meta.get("name", "")
        errs = self._schema_errors(res, version, obj, "main", validate)
        if not name:
            errs.append(FieldError("required", "metadata.name",
                                   detail="name or generateName is required"))
        else:
            errs += _name_errors(res, name)
        errs += _meta_errors(meta)
        if errs:
            raise self._invalid(res, name, errs)
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "Internal error occurred: resourceVersion "
                           "should not be set on objects to be created",
                           {"causes": [{"message": "resourceVersion should not be set on "
                                        "objects to be created"}]})
        with self.store.cond:
            if res.key + (ns, name) in self.store.objects:
                raise already_exists(res, name)
            return self.store.commit(res, ns, name, "ADDED", obj, None), warnings

    def get(self, res, ns, name):
        with self.store.cond:
            obj = self.store.objects.get(res.key + (self._ns(res, ns), name))
        if obj is None:
            raise not_found(res, name)
        return obj

    def list(self, res, version, ns, match=lambda o: True):
        with self.store.cond:
            rv = self.store.rv
            items = [o for k, o in sorted(self.store.objects.items())
                     if k[:2] == res.key and (ns is None or k[2] == self._ns(res, ns))
                     and match(o)]
        meta = {"resourceVersion": str(rv)}
        if res.crd:
            meta["continue"] = ""
            items = [self.output(res, version, o) for o in items]
        else:
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                     for o in items]
        return {"apiVersion": res.api_version(version), "kind": res.list_kind,
                "metadata": meta, "items": items}

    def output(self, res, version, obj):
        want = res.api_version(version)
        if obj.get("apiVersion") == want:
            return obj
        return dict(obj, apiVersion=want)

    # --- update (PUT and PATCH, object and status) ---
    def update(self, res, version, ns, name, make_new, sub=None, field_validation="Warn",
               validate=None, create_body=None):
        """make_new(current copy) returns the proposed object (the PUT body or the patched
        object); the rest is the real server's update path."""
        ns = self._ns(res, ns)
        with self.store.cond:
            cur = self.store.objects.get(res.key + (ns, name))
            if cur is None:
                if create_body is not None and res.create_on_update:
                    if (create_body.get("metadata") or {}).get("name") != name:
                        raise bad_request("the name of the object does not match the name on "
                                          "the URL")
                    return self.create(res, version, ns, create_body, field_validation,
                                       validate)
                raise not_found(res, name)
            new = make_new(copy.deepcopy(cur))
            warnings = self.decode(res, version, new, field_validation)
            meta, cmeta = new["metadata"], cur["metadata"]
            if meta.get("name", "") != name:
                raise bad_request(f"the name of the object ({meta.get('name', '')}) does not "
                                  f"match the name on the URL ({name})")
            if res.namespaced and meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(f"the namespace of the object ({meta['namespace']}) does "
                                  f"not match the namespace on the request ({ns})")
            rv = meta.get("resourceVersion") or ""
            if not rv and not res.unconditional_update:
                raise invalid(res.qualified, res.plural, res.group, name, [FieldError(
                    "invalid", "metadata.resourceVersion", crdschema.Raw("0x0"),
                    "must be specified for an update")])
            if rv and rv != cmeta["resourceVersion"]:
                raise conflict(res, name)
            new = self._prepare_update(res, new, cur, sub)
            errs = self._update_errors(res, version, new, cur, sub, validate)
            if errs:
                raise self._invalid(res, name, errs)
            if new == cur:
                return cur, warnings  # a no-op writes nothing
            if cmeta.get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                    and cmeta.get("deletionGracePeriodSeconds") == 0:
                self.store.commit(res, ns, name, "DELETED", cur, cur)
                return new, warnings
            return self.store.commit(res, ns, name, "MODIFIED", new, cur), warnings

    def _prepare_update(self, res, new, cur, sub):
        meta, cmeta = new["metadata"], cur["metadata"]
        if sub == "status":
            # The status strategy: everything but .status comes from the stored object.
            status = new.get("status")
            new = copy.deepcopy(cur)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            return new
        if res.status:
            if "status" in cur:
                new["status"] = copy.deepcopy(cur["status"])
            else:
                new.pop("status", None)
        meta["resourceVersion"] = cmeta["resourceVersion"]
        meta["namespace"] = cmeta.get("namespace")
        if meta["namespace"] is None:
            del meta["namespace"]
        for k in ("generation", "creationTimestamp", "deletionTimestamp"):
            if k in cmeta:
                meta[k] = cmeta[k]
            else:
                meta.pop(k, None)
        if "deletionGracePeriodSeconds" in cmeta and "deletionGracePeriodSeconds" not in meta:
            meta["deletionGracePeriodSeconds"] = cmeta["deletionGracePeriodSeconds"]
        if not meta.get("uid"):
            meta["uid"] = cmeta["uid"]
        if res.crd:
            def body(o):
                return {k: v for k, v in o.items()
                        if k not in ("metadata", "status", "apiVersion", "kind")}
            if body(new) != body(cur):
                meta["generation"] = cmeta.get("generation", 0) + 1
        return new

    def _update_errors(self, res, version, new, cur, sub, validate):
        meta, cmeta = new["metadata"], cur["metadata"]
        errs = []
        for k in ("uid", "deletionGracePeriodSeconds"):
            if k in cmeta and meta.get(k) != cmeta[k]:
                errs.append(FieldError("invalid", f"metadata.{k}", meta.get(k),
                                       "field is immutable"))
        if cmeta.get("deletionTimestamp"):
            added = [f for f in meta.get("finalizers") or [] if f not in
                     (cmeta.get("finalizers") or [])]
            if added:
                errs.append(FieldError("forbidden", "metadata.finalizers", detail=(
                    "no new finalizers can be added if the object is being deleted, found "
                    "new finalizers []string{" + ", ".join(json.dumps(f) for f in added) +
                    "}")))
        errs += _meta_errors(meta)
        errs += crdschema.ratchet(self._schema_errors(
            res, version, new, "status" if sub == "status" else "main", validate), new, cur)
        return errs

    def put(self, res, version, ns, name, body, sub=None, field_validation="Warn",
            validate=None):
        body_copy = copy.deepcopy(body)
        return self.update(res, version, ns, name, lambda cur: copy.deepcopy(body), sub,
                           field_validation, validate, create_body=body_copy)

    def patch(self, res, version, ns, name, content_type, patch, sub=None,
              field_validation="Warn", validate=None):
        if content_type == "application/merge-patch+json" or (
                content_type == "application/strategic-merge-patch+json" and not res.crd):
            if not isinstance(patch, dict):
                raise bad_request("a merge patch must be a JSON object")

            def make(cur):
                return merge_patch(cur, patch)
        elif content_type == "application/json-patch+json":
            def make(cur):
                try:
                    return json_patch(cur, patch)
                except (JsonPatchError, KeyError, ValueError, TypeError) as e:
                    raise ApiError(422, "Invalid", str(e))
        else:
            accepted = ["application/json-patch+json", "application/merge-patch+json",
                        "application/apply-patch+yaml"]
            if not res.crd:
                accepted.insert(2, "application/strategic-merge-patch+json")
            raise unsupported_media(accepted)
        return self.update(res, version, ns, name, make, sub, field_validation, validate)

    # --- delete ---
    def delete(self, res, version, ns, name, options=None):
        options = options or {}
        ns = self._ns(res, ns)
        pre = options.get("preconditions") or {}
        with self.store.cond:
            cur = self.store.objects.get(res.key + (ns, name))
            if cur is None:
                raise not_found(res, name)
            cmeta = cur["metadata"]
            if pre.get("uid") and pre["uid"] != cmeta.get("uid"):
                raise conflict(res, name, f"Precondition failed: UID in precondition: "
                                          f"{pre['uid']}, UID in object meta: {cmeta['uid']}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != cmeta["resourceVersion"]:
                raise conflict(res, name, "Precondition failed: ResourceVersion in "
                                          f"precondition: {pre['resourceVersion']}, "
                                          f"ResourceVersion in object meta: "
                                          f"{cmeta['resourceVersion']}")
            if cmeta.get("finalizers"):
                if cmeta.get("deletionTimestamp"):
                    return 200, self.output(res, version, cur)
                new = copy.deepcopy(cur)
                m = new["metadata"]
                if m.get("generation", 0) > 0:
                    m["generation"] += 1
                m["deletionTimestamp"] = now_rfc3339()
                m["deletionGracePeriodSeconds"] = 0
                return 200, self.output(res, version, self.store.commit(
                    res, ns, name, "MODIFIED", new, cur))
            self.store.commit(res, ns, name, "DELETED", cur, cur)
        details = _details(res, name)
        details["uid"] = cmeta["uid"]
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                     "status": "Success", "details": details}


# --- faults and records -----------------------------------------------------------------------

@dataclasses.dataclass
class Request:
    """One request as the server saw it."""
    method: str
    path: str
    query: dict
    body: object
    kind: str
    code: int = 0
    content_type: str = ""
    user_agent: str = ""
    time: float = 0.0

    def as_dict(self):
        d = dataclasses.asdict(self)
        if isinstance(d["body"], bytes):
            d["body"] = d["body"].decode("utf-8", "replace")
        return d


@dataclasses.dataclass
class Fault:
    """Answer matching requests with `code` (if set) after `seconds` (if set), or once the test
    releases them (`hold`), `count` times (None: until cleared), once `skip` of them went through
    untouched. Matches on method, a substring of path?query, and path kind."""
    code: int = 0
    seconds: float = 0.0
    hold: bool = False
    count: object = 1
    skip: int = 0
    method: str = None
    path: str = None
    kind: str = None

    def matches(self, req, target):
        return ((self.method is None or self.method.upper() == req.method)
                and (self.path is None or self.path in target)
                and (self.kind is None or self.kind == req.kind))


def path_kind(res, sub, name, watch):
    """The path kind that counts and faults use: collection, watch, object, status, events,
    other."""
    if res is None:
        return "other"
    if res is EVENTS:
        return "events"
    if sub == "status":
        return "status"
    if name:
        return "object"
    return "watch" if watch else "collection"


def parse_bool(value, name):
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("", "0", "f", "F", "false", "FALSE", "False"):
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax ({name})')


# --- HTTP -------------------------------------------------------------------------------------

class WatchStream:
    def __init__(self, handler):
        self.handler = handler
        self.drop = None  # "clean" or "abrupt" once told to end


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "multinic-test-apiserver"

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.owner.verbose:
            sys.stderr.write("apiserver: %s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    # --- plumbing ---
    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _recorded(self, code):
        """Records the request with its answer's code before the answer goes out, so that a
        client that has the answer finds the request recorded."""
        self._code = code
        req, self._req = self._req, None
        if req is not None:
            req.code = code
            self.server.owner._record(req)

    def _send(self, code, obj, headers=None):
        body = (dumps(obj) + "\n").encode() if not isinstance(obj, bytes) else obj
        self._recorded(code)
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(obj, bytes)
                         else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            for one in (v if isinstance(v, list) else [v]):
                self.send_header(k, one)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, e):
        self._send(e.code, e.status, e.headers)

    def _handle(self, method):
        owner = self.server.owner
        self._code, self._req = 0, None
        url = urlsplit(self.path)
        path, raw_query = url.path, url.query
        query = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if path.startswith("/_test/"):
            return self._admin(method, path, body)
        route = owner._route(path)
        res, version, ns, name, sub = route or (None, None, None, None, None)
        watch = False
        try:
            watch = parse_bool(query.get("watch", ""), "watch")
        except ApiError:
            pass
        parsed_body = body
        if body:
            try:
                parsed_body = json.loads(body)
            except ValueError:
                pass
        req = Request(method, path, query, parsed_body, path_kind(res, sub, name, watch),
                      content_type=self.headers.get("Content-Type", ""),
                      user_agent=self.headers.get("User-Agent", ""), time=time.time())
        self._req = req
        try:
            self._check_token()
            owner._apply_faults(req, path + ("?" + raw_query if raw_query else ""))
            self._accept_json()
            if route is None:
                return self._nonresource(method, path)
            self._dispatch(method, route, query, body)
        except ApiError as e:
            self._send_error(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # a bug of this server: a 500, and the test sees it
            owner.internal_errors.append(traceback.format_exc())
            if owner.verbose:
                traceback.print_exc()
            try:
                self._send_error(ApiError(500, "InternalError", f"test server bug: {e!r}"))
            except OSError:
                self.close_connection = True
        finally:
            self._recorded(self._code)  # when no answer went out (code 0)

    def _check_token(self):
        scheme, _, given = self.headers.get("Authorization", "").strip().partition(" ")
        token = self.server.owner.token
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(),
                                                                    token.encode()):
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _accept_json(self):
        accept = self.headers.get("Accept", "")
        if accept:
            types = [t.split(";")[0].strip() for t in accept.split(",")]
            if not any(t in ("application/json", "*/*", "application/*", "") for t in types):
                raise ApiError(406, "NotAcceptable", "only the following media types are "
                               "accepted: application/json")

    def _body_json(self, body):
        ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ct in ("application/yaml",):
            try:
                return yaml.safe_load(body)
            except yaml.YAMLError as e:
                raise bad_request(f"error converting YAML to JSON: {e}")
        if ct != "application/json":
            raise unsupported_media(["application/json", "application/yaml"])
        return self._parse(body)

    def _parse(self, body):
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise bad_request(f"error decoding the body: {e}")

    def _nonresource(self, method, path):
        owner = self.server.owner
        if method not in ("GET", "HEAD"):
            raise method_not_allowed() if path in owner.discovery_paths() else path_not_found()
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok")
        doc = owner.discovery_paths().get(path)
        if doc is None:
            raise path_not_found()
        self._send(200, doc)

    # --- resources ---
    def _dispatch(self, method, route, query, body):
        owner = self.server.owner
        api = owner.api
        res, version, ns, name, sub = route
        fv = query.get("fieldValidation", "Warn") or "Warn"
        if fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f'fieldValidation must be one of "Ignore", "Warn", "Strict", '
                              f'got "{fv}"')
        if "dryRun" in query and method in ("POST", "PUT", "PATCH", "DELETE"):
            raise bad_request("dryRun is not supported by the test API server")
        if name is None:  # the collection
            if method in ("GET", "HEAD"):
                match = self._selectors(res, query)
                if parse_bool(query.get("watch", ""), "watch"):
                    return self._watch(res, version, ns, query, match)
                return self._send(200, api.list(res, version, ns, match))
            if method == "POST" and (ns is not None or not res.namespaced):
                obj, warnings = api.create(res, version, ns, self._body_json(body), fv)
                return self._send(201, api.output(res, version, obj), _warn(warnings))
            raise method_not_allowed()
        if method in ("GET", "HEAD"):
            return self._send(200, api.output(res, version, api.get(res, ns, name)))
        if method == "PUT":
            obj, warnings = api.put(res, version, ns, name, self._body_json(body), sub, fv)
            return self._send(200, api.output(res, version, obj), _warn(warnings))
        if method == "PATCH":
            ct = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            patch = self._parse(body) if ct.endswith("json") else None
            obj, warnings = api.patch(res, version, ns, name, ct, patch, sub, fv)
            return self._send(200, api.output(res, version, obj), _warn(warnings))
        if method == "DELETE" and sub is None:
            options = self._parse(body) if body else {}
            code, out = api.delete(res, version, ns, name, options)
            return self._send(code, out)
        raise method_not_allowed()

    def _selectors(self, res, query):
        f = field_selector(res, query.get("fieldSelector", ""))
        lab = label_selector(query.get("labelSelector", ""))
        return lambda o: f(o) and lab(o)

    # --- watch ---
    def _watch(self, res, version, ns, query, match):
        owner = self.server.owner
        rv_text = query.get("resourceVersion", "")
        try:
            timeout = float(query.get("timeoutSeconds") or 0)
            timeout = timeout if timeout > 0 else owner.watch_timeout  # 0: the server's choice
            if owner.max_watch_timeout is not None:  # a server that ends watches early
                timeout = min(timeout, owner.max_watch_timeout)
            rv = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError:
            raise bad_request(f'invalid value for resourceVersion or timeoutSeconds: '
                              f'"{rv_text}", "{query.get("timeoutSeconds")}"')
        bookmarks = parse_bool(query.get("allowWatchBookmarks", ""), "allowWatchBookmarks")
        ns = owner.api._ns(res, ns) if ns is not None else None
        self._recorded(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        stream = WatchStream(self)
        run = owner._run
        owner._watch_opened(stream)
        try:
            end = self._watch_loop(res, version, ns, rv, timeout, bookmarks, match, stream,
                                   run)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            end = "gone"
        finally:
            owner._watch_closed(stream)
        if end == "clean":
            try:
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
        else:
            self.close_connection = True
            if end == "abrupt":
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _watch_loop(self, res, version, ns, rv, timeout, bookmarks, match, stream, run):
        owner = self.server.owner
        store = owner.api.store
        deadline = time.monotonic() + timeout
        pending = []
        if owner.hang_watches:
            return self._hang(stream, run)
        with store.cond:
            floor = store.floor(res.key)
            if store.expire_watches > 0:
                store.expire_watches -= 1
                pending.append(_expired(rv if rv is not None else store.rv, store.rv + 1))
            elif rv is None:
                for k, o in sorted(store.objects.items()):
                    if k[:2] == res.key and (ns is None or k[2] == ns) and match(o):
                        pending.append({"type": "ADDED",
                                        "object": owner.api.output(res, version, o)})
                last = store.rv
            elif rv < floor:
                pending.append(_expired(rv, floor + 1))
            else:
                last = rv
        next_bookmark = time.monotonic() + owner.bookmark_interval
        while True:
            for ev in pending:
                self._write_event(ev)
                if ev["type"] == "ERROR":
                    return "clean"
            pending = []
            with store.cond:
                while True:
                    if stream.drop or run.stopped:
                        return stream.drop or "abrupt"
                    now = time.monotonic()
                    if now >= deadline:
                        return "clean"
                    if store.rv > last or (bookmarks and now >= next_bookmark):
                        break
                    store.cond.wait(min(deadline - now, 0.25,
                                        max(next_bookmark - now, 0.001) if bookmarks else 1))
                    if self._client_gone():
                        return "gone"
                floor = store.floor(res.key)
                if last < floor:  # fell out of the history while not reading
                    pending.append(_expired(last, floor + 1))
                    continue
                for ch in store.history[res.key]:
                    if ch.rv > last and (ns is None or ch.namespace == ns):
                        ev = _convert(ch, match)
                        if ev:
                            ev["object"] = owner.api.output(res, version, ev["object"])
                            pending.append(ev)
                last = store.rv
                if bookmarks and time.monotonic() >= next_bookmark:
                    pending.append({"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version(version),
                        "metadata": {"resourceVersion": str(last)}}})
                    next_bookmark = time.monotonic() + owner.bookmark_interval

    def _hang(self, stream, run):
        """A watch that sends nothing and never ends by itself, whatever its timeoutSeconds: a
        connection that died without TCP noticing, or a stuck server."""
        store = self.server.owner.api.store
        with store.cond:
            while not (stream.drop or run.stopped):
                store.cond.wait(0.25)
                if self._client_gone():
                    return "gone"
        return stream.drop or "abrupt"

    def _write_event(self, ev):
        data = (dumps(ev) + "\n").encode()
        if self.server.owner.fragment_watch:
            for i in range(0, len(data), 7):
                part = data[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                time.sleep(0.001)
        else:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _client_gone(self):
        """True once the client closed a watch connection (it sends nothing on it)."""
        conn = self.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            conn.setblocking(False)
            try:
                conn.recv(1)  # end of stream, or data a watch client never sends
                return True
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            finally:
                conn.setblocking(True)
        except (OSError, ValueError):
            return True

    # --- the test-only admin endpoint ---
    def _admin(self, method, path, body):
        owner = self.server.owner
        try:
            if path == "/_test/faults":
                if method == "POST":
                    owner.apply_admin(self._parse(body) or {})
                elif method == "DELETE":
                    owner.clear_faults()
                elif method != "GET":
                    raise method_not_allowed()
                return self._send(200, owner.admin_state())
            if path == "/_test/requests":
                if method == "DELETE":
                    owner.clear_requests()
                return self._send(200, [r.as_dict() for r in owner.requests()])
            if path == "/_test/counts" and method == "GET":
                return self._send(200, [{"method": m, "kind": k, "count": n}
                                        for (m, k), n in sorted(owner.counts().items())])
            raise path_not_found()
        except ApiError as e:
            self._send_error(e)


def _warn(warnings):
    """Warning headers as the API server writes them: 299 - "<quoted text>"."""
    if not warnings:
        return None
    return {"Warning": ['299 - "' + json.dumps(w)[1:-1] + '"' for w in warnings]}


def _expired(rv, oldest):
    return {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {rv} ({oldest})", "reason": "Expired",
        "code": 410}}


def _convert(ch, match):
    """A change as one watcher with a selector sees it (the watch cache's rules)."""
    cur = match(ch.object) if ch.type != "DELETED" else False
    prev = match(ch.prev) if ch.prev is not None else False
    if ch.type == "DELETED":
        return {"type": "DELETED", "object": ch.object} if prev else None
    if cur and prev:
        return {"type": "MODIFIED", "object": ch.object}
    if cur:
        return {"type": "ADDED", "object": ch.object}
    if prev:
        gone = copy.deepcopy(ch.prev)
        gone["metadata"]["resourceVersion"] = str(ch.rv)
        return {"type": "DELETED", "object": gone}
    return None


class _Run:
    """One start..stop of the server: watch loops end when it stops."""

    def __init__(self):
        self.stopped = False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self):
        # No getfqdn(): a reverse DNS lookup on a machine without network can hang.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        owner = self.owner
        try:
            # Go's servers answer without Nagle's delay; so does this one (headers and body
            # go out in two writes, which Nagle and delayed ACKs would hold up by 40 ms).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(10)
            conn = self.ssl_context.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except (OSError, ssl.SSLError) as e:
            owner.tls_failures.append(repr(e))
            return
        with owner._lock:
            owner._conns.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with owner._lock:
                owner._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.owner.internal_errors.append(traceback.format_exc())


# --- the public class -------------------------------------------------------------------------

class ApiServer:
    """The test API server, in process. Helpers act as an operator would (through the same
    code as the HTTP API, without faults and without being recorded)."""

    def __init__(self, crd_path, token, cert, key, host="127.0.0.1", port=0,
                 namespace=DEFAULT_NAMESPACE, history=1000, bookmark_interval=5.0,
                 watch_timeout=1800.0, validate=True, verbose=False):
        self.resource = load_crd(crd_path)
        self.api = Api(self.resource, history, validate)
        self.token = token.strip()
        self.host, self.port = host, port
        self.namespace = namespace
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.max_watch_timeout = None  # seconds: every watch ends cleanly after at most this
        self.fragment_watch = False
        self.hang_watches = False  # watches opened from now on send nothing and never end
        self.verbose = verbose
        self.internal_errors = []
        self.tls_failures = []
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ssl.load_cert_chain(str(cert), str(key))
        self._ssl.set_alpn_protocols(["http/1.1"])
        self._lock = threading.Lock()
        self._conns = set()
        self._watches = set()
        self._faults = []
        self._held = []  # requests that a hold() fault keeps unanswered
        self._held_cond = threading.Condition()
        self._records = []
        self._server = None
        self._thread = None
        self._run = _Run()

    # --- lifecycle ---
    def start(self):
        """Listens (on the same port as before after a stop()) and serves in a thread."""
        self._run = _Run()
        self._server = _HTTPServer((self.host, self.port), Handler, bind_and_activate=True)
        self._server.owner = self
        self._server.ssl_context = self._ssl
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01}, daemon=True,
                                        name="apiserver")
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and cuts every connection, open watches abruptly; objects stay."""
        if self._server is None:
            return
        self._run.stopped = True
        with self.api.store.cond:
            self.api.store.notify()
        self.release()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with self._lock:
                if not self._watches:
                    break
            time.sleep(0.01)
        self._server = None

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"https://{self.host}:{self.port}"

    @property
    def resource_version(self):
        with self.api.store.cond:
            return str(self.api.store.rv)

    def collection_path(self, namespace=None):
        r = self.resource
        ns = namespace or self.namespace
        base = f"/apis/{r.group}/{r.storage}"
        return f"{base}/namespaces/{ns}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"

    def object_path(self, name, sub=None, namespace=None):
        """The object's path, or its subresource's (sub="status")."""
        return f"{self.collection_path(namespace)}/{name}" + (f"/{sub}" if sub else "")

    # --- routing ---
    def _route(self, path):
        segs = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if segs[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            return None
        if not rest:
            return None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            ns, plural, tail = None, rest[0], rest[1:]
        res = self.api.resources.get((group, plural))
        if res is None or version not in res.versions:
            return None
        if ns is not None and not res.namespaced:
            return None
        if len(tail) > 2 or (len(tail) == 2 and (tail[1] != "status" or not res.status)):
            return None
        if tail and res.namespaced and ns is None:
            return None
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) == 2 else None
        return res, version, ns, name, sub

    def discovery_paths(self):
        r = self.resource
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        resources = [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                      "kind": r.kind, "verbs": verbs, "shortNames": list(r.short_names)}]
        if r.status:
            resources.append({"name": f"{r.plural}/status", "singularName": "",
                              "namespaced": r.namespaced, "kind": r.kind,
                              "verbs": ["get", "patch", "update"]})
        gvs = [{"groupVersion": f"{r.group}/{v}", "version": v} for v in r.versions]
        group = {"name": r.group, "versions": gvs,
                 "preferredVersion": {"groupVersion": f"{r.group}/{r.storage}",
                                      "version": r.storage}}
        docs = {
            "/version": {"major": "1", "minor": "29", "gitVersion": "v1.29.0-multinic-test",
                         "platform": "linux/amd64"},
            "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]},
            "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "events", "singularName": "event", "namespaced": True,
                 "kind": "Event", "verbs": verbs, "shortNames": ["ev"]}]},
            "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]},
            f"/apis/{r.group}": dict(group, kind="APIGroup", apiVersion="v1"),
        }
        for v in r.versions:
            docs[f"/apis/{r.group}/{v}"] = {"kind": "APIResourceList", "apiVersion": "v1",
                                            "groupVersion": f"{r.group}/{v}",
                                            "resources": resources}
        return docs

    # --- records ---
    def _record(self, req):
        with self._lock:
            self._records.append(req)

    def requests(self, method=None, kind=None, path=None):
        """Recorded requests (oldest first), optionally only those matching."""
        with self._lock:
            return [r for r in self._records
                    if (method is None or r.method == method) and (kind is None or r.kind == kind)
                    and (path is None or path in r.path)]

    def clear_requests(self):
        with self._lock:
            self._records.clear()

    def counts(self):
        """Counter of requests by (method, path kind): collection (list, create), watch,
        object, status, events, other."""
        with self._lock:
            return collections.Counter((r.method, r.kind) for r in self._records)

    def count(self, method=None, kind=None):
        return len(self.requests(method, kind))

    # --- faults ---
    def fail(self, count=1, code=500, method=None, path=None, kind=None, skip=0):
        """Answers the next `count` matching requests (None: all until cleared) with `code`
        and its Status, after letting `skip` of them through. `path` is a substring of
        path?query."""
        with self._lock:
            self._faults.append(Fault(code=code, count=count, method=method, path=path,
                                      kind=kind, skip=skip))

    def delay(self, seconds, count=None, method=None, path=None, kind=None):
        """Answers matching requests `seconds` late (count None: until cleared)."""
        with self._lock:
            self._faults.append(Fault(seconds=seconds, count=count, method=method, path=path,
                                      kind=kind))

    def hold(self, count=1, method=None, path=None, kind=None):
        """Keeps the next `count` matching requests (None: all until cleared) unanswered until
        release(); held() lists them meanwhile."""
        with self._lock:
            self._faults.append(Fault(hold=True, count=count, method=method, path=path,
                                      kind=kind))

    def held(self):
        """The requests held now, oldest first (not recorded until answered)."""
        with self._held_cond:
            return list(self._held)

    def release(self):
        """Lets every held request go on (to its other faults, then its answer)."""
        with self._held_cond:
            self._held.clear()
            self._held_cond.notify_all()

    def _wait_released(self, req):
        run = self._run
        with self._held_cond:
            self._held.append(req)
            self._held_cond.notify_all()
            while any(r is req for r in self._held) and not run.stopped:
                self._held_cond.wait(0.1)

    def clear_faults(self):
        with self._lock:
            self._faults.clear()
        with self.api.store.cond:
            self.api.store.expire_watches = 0
        self.fragment_watch = False
        self.hang_watches = False
        self.max_watch_timeout = None
        self.release()

    def _apply_faults(self, req, target):
        with self._lock:
            hits = []
            for f in list(self._faults):
                if f.matches(req, target) and f.skip > 0:
                    f.skip -= 1
                elif f.matches(req, target):
                    hits.append(f)
                    if f.count is not None:
                        f.count -= 1
                        if f.count <= 0:
                            self._faults.remove(f)
        for f in hits:
            if f.hold:
                self._wait_released(req)
        for f in hits:
            if f.seconds:
                time.sleep(f.seconds)
        for f in hits:
            if f.code:
                raise injected(f.code)

    def drop_watches(self, clean=False):
        """Ends every open watch now: abruptly (the connection cut mid-stream, as when the API
        server goes away) or cleanly (as at the end of timeoutSeconds). Returns how many."""
        with self._lock:
            watches = list(self._watches)
        for w in watches:
            w.drop = "clean" if clean else "abrupt"
        with self.api.store.cond:
            self.api.store.notify()
        return len(watches)

    def expire_next_watch(self, count=1):
        """The next `count` watches get the 410 Expired ERROR event, whatever they ask."""
        with self.api.store.cond:
            self.api.store.expire_watches += count

    def compact(self):
        """Forgets the history: a watch from any resourceVersion before now gets 410."""
        self.api.store.compact()

    def _watch_opened(self, w):
        with self._lock:
            self._watches.add(w)
        with self.api.store.cond:
            self.api.store.notify()

    def _watch_closed(self, w):
        with self._lock:
            self._watches.discard(w)
        with self.api.store.cond:
            self.api.store.notify()

    def open_watches(self):
        with self._lock:
            return len(self._watches)

    @property
    def validate(self):
        return self.api.validate

    @validate.setter
    def validate(self, on):
        self.api.validate = on

    def apply_admin(self, doc):
        """The JSON form of the switches, for /_test/faults."""
        for key, value in doc.items():
            if key == "fail":
                self.fail(**value)
            elif key == "delay":
                self.delay(**value)
            elif key == "drop_watches":
                self.drop_watches(**(value if isinstance(value, dict) else {}))
            elif key == "expire_next_watch":
                self.expire_next_watch(int(value))
            elif key == "compact" and value:
                self.compact()
            elif key == "clear" and value:
                self.clear_faults()
            elif key == "hold":
                self.hold(**value)
            elif key == "release" and value:
                self.release()
            elif key in ("validate", "fragment_watch", "hang_watches"):
                setattr(self, key, bool(value))
            elif key in ("bookmark_interval", "watch_timeout"):
                setattr(self, key, float(value))
            elif key == "max_watch_timeout":
                self.max_watch_timeout = None if value is None else float(value)
            elif key == "token":
                self.token = str(value).strip()
            else:
                raise bad_request(f"unknown switch {key!r}")

    def admin_state(self):
        with self._lock:
            faults = [dataclasses.asdict(f) for f in self._faults]
            watches = len(self._watches)
        held = len(self.held())
        with self.api.store.cond:
            return {"faults": faults, "openWatches": watches,
                    "expireNextWatch": self.api.store.expire_watches,
                    "resourceVersion": str(self.api.store.rv),
                    "oldestWatchable": str(self.api.store.floor(self.resource.key)),
                    "validate": self.validate, "fragmentWatch": self.fragment_watch,
                    "hangWatches": self.hang_watches, "held": held,
                    "bookmarkInterval": self.bookmark_interval}

    # --- helpers: what an operator does ---
    def _ns_or_default(self, namespace):
        return namespace or self.namespace

    def create(self, obj, namespace=None, validate=None):
        obj = copy.deepcopy(obj)
        r = self.resource
        obj.setdefault("apiVersion", r.api_version(r.storage))
        obj.setdefault("kind", r.kind)
        ns = namespace or (obj.get("metadata") or {}).get("namespace") or self.namespace
        created, _ = self.api.create(r, r.storage, ns, obj, validate=validate)
        return copy.deepcopy(created)

    def get(self, name, namespace=None):
        """The object, or None."""
        try:
            return copy.deepcopy(self.api.get(self.resource, self._ns_or_default(namespace),
                                              name))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def list(self, namespace=None):
        r = self.resource
        return copy.deepcopy(self.api.list(r, r.storage, self._ns_or_default(namespace))["items"])

    def patch(self, name, patch, namespace=None, status=False, validate=None,
              content_type="application/merge-patch+json"):
        r = self.resource
        obj, _ = self.api.patch(r, r.storage, self._ns_or_default(namespace), name,
                                content_type, patch, "status" if status else None,
                                validate=validate)
        return copy.deepcopy(obj)

    def update_spec(self, name, spec, namespace=None, validate=None):
        """Replaces the spec (as `kubectl edit` would, from the latest version)."""
        def make(cur):
            cur["spec"] = copy.deepcopy(spec)
            return cur
        r = self.resource
        obj, _ = self.api.update(r, r.storage, self._ns_or_default(namespace), name, make,
                                 validate=validate)
        return copy.deepcopy(obj)

    def set_status(self, name, status, namespace=None, validate=None):
        """Replaces the status through the status subresource."""
        def make(cur):
            cur["status"] = copy.deepcopy(status)
            return cur
        r = self.resource
        obj, _ = self.api.update(r, r.storage, self._ns_or_default(namespace), name, make,
                                 sub="status" if r.status else None, validate=validate)
        return copy.deepcopy(obj)

    def set_finalizers(self, name, finalizers, namespace=None):
        return self.patch(name, {"metadata": {"finalizers": list(finalizers)}}, namespace)

    def delete(self, name, namespace=None):
        """DELETE: returns the object marked for deletion (finalizers) or None (gone)."""
        r = self.resource
        _, out = self.api.delete(r, r.storage, self._ns_or_default(namespace), name)
        return copy.deepcopy(out) if out.get("kind") == r.kind else None

    def events(self, namespace=None, involved=None, reason=None):
        """core/v1 Events (all namespaces when namespace is None), oldest first."""
        items = self.api.list(EVENTS, "v1", namespace)["items"]
        items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [e for e in items
                if (involved is None or e.get("involvedObject", {}).get("name") == involved)
                and (reason is None or e.get("reason") == reason)]

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Waits until predicate() is truthy, re-checked on every write and every watch that
        opens or closes (and every 0.1 s); returns its value, or raises AssertionError after
        timeout seconds. The predicate runs without the server's lock: it may use the API."""
        store = self.api.store
        deadline = time.monotonic() + timeout
        while True:
            with store.cond:
                seq = store.seq
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            with store.cond:
                if store.seq == seq:
                    store.cond.wait(min(left, 0.1))


# --- TLS material -----------------------------------------------------------------------------

TLSFiles = collections.namedtuple("TLSFiles", "ca cert key")

_OPENSSL_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
"""


def make_tls(directory, name="multinic test CA"):
    """A throwaway CA and a server certificate for localhost, 127.0.0.1 and ::1, made with
    openssl in directory; returns TLSFiles(ca, cert, key) paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cnf, ca_key, ca = d / "openssl.cnf", d / "ca.key", d / "ca.crt"
    key, csr, cert = d / "server.key", d / "server.csr", d / "server.crt"
    cnf.write_text(_OPENSSL_CNF)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        p = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {p.stderr.strip()}")

    openssl("req", "-x509", "-config", cnf, "-extensions", "ca_ext", *ec, "-keyout", ca_key,
            "-out", ca, "-days", "30", "-subj", f"/CN={name}")
    openssl("req", "-new", "-config", cnf, *ec, "-keyout", key, "-out", csr,
            "-subj", "/CN=localhost")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
            "-set_serial", "0x" + secrets.token_hex(8), "-days", "30",
            "-extfile", cnf, "-extensions", "server_ext", "-out", cert)
    for p in (ca_key, key):
        os.chmod(p, 0o600)
    return TLSFiles(str(ca), str(cert), str(key))


# --- CLI --------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API test server (HTTPS, one CRD and "
                                            "core Events; faults at /_test/faults).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert", help="server certificate (PEM)")
    p.add_argument("--key", help="server key (PEM)")
    p.add_argument("--make-tls", metavar="DIR",
                   help="make a CA and server certificate in DIR (ca.crt, server.crt, "
                        "server.key) instead of --cert/--key")
    p.add_argument("--token-file", required=True)
    p.add_argument("--crd", required=True, help="the CustomResourceDefinition file")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                   help="namespace of objects loaded with --load without one")
    p.add_argument("--load", action="append", default=[], metavar="FILE",
                   help="create the objects in this YAML/JSON file at start")
    p.add_argument("--history", type=int, default=1000,
                   help="changes a watch can still start from")
    p.add_argument("--bookmark-interval", type=float, default=5.0)
    p.add_argument("--watch-timeout", type=float, default=1800.0,
                   help="end of a watch without timeoutSeconds")
    p.add_argument("--no-validate", action="store_true")
    p.add_argument("--print-port", action="store_true",
                   help="print the port on stdout once listening")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    if a.make_tls:
        tls = make_tls(a.make_tls)
        a.cert, a.key = tls.cert, tls.key
    if not a.cert or not a.key:
        p.error("--cert and --key (or --make-tls) are required")
    token = Path(a.token_file).read_text().strip()
    server = ApiServer(a.crd, token, a.cert, a.key, host=a.host, port=a.port,
                       namespace=a.namespace, history=a.history,
                       bookmark_interval=a.bookmark_interval, watch_timeout=a.watch_timeout,
                       validate=not a.no_validate, verbose=a.verbose)
    for path in a.load:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    server.create(doc)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    if a.print_port:
        print(server.port, flush=True)
    if a.verbose:
        print(f"apiserver: listening on {server.url}", file=sys.stderr, flush=True)
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
