"""The Kubernetes API test server (tests/apiserver) keeps the API's semantics, checked with a
plain HTTPS client and curl, so that the bridge's tests can trust it. No root, no namespaces."""
import contextlib
import copy
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "apiserver"))
import apiserver  # noqa: E402

FIXTURE_CRD = REPO / "tests" / "apiserver" / "testdata" / "minimal-crd.yaml"
REAL_CRD = REPO / "crds" / "multinicnodeconfigs.yaml"
SAMPLE = REPO / "crds" / "samples" / "viola2-biz-worker01.yaml"
TOKEN = "test-token-0123456789"
NS = "multinic-system"
BASE = f"/apis/multinic.io/v1alpha1/namespaces/{NS}/multinicnodeconfigs"
EVENTS = f"/api/v1/namespaces/{NS}/events"
MERGE = "application/merge-patch+json"


def node(name, **spec):
    s = {"nodeName": name, "interfaces": [
        {"id": 0, "name": "multinic0", "macAddress": "fa:16:3e:00:00:01", "address": "10.1.0.11",
         "cidr": "10.1.0.0/24", "mtu": 1450}]}
    s.update(spec)
    return {"apiVersion": "multinic.io/v1alpha1", "kind": "MultiNicNodeConfig",
            "metadata": {"name": name, "namespace": NS}, "spec": s}


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return f"Response({self.status}, {self.body!r})"


class Client:
    """A plain HTTPS client that verifies the server against the CA."""

    def __init__(self, port, token, ca, host="localhost"):
        self.port, self.token, self.host = port, token, host
        self.ctx = ssl.create_default_context(cafile=ca)

    def _conn(self):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=5)

    def _headers(self, content_type, token):
        h = {"Accept": "application/json"}
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if content_type:
            h["Content-Type"] = content_type
        return h

    def request(self, method, path, body=None, content_type="application/json", token=None):
        c = self._conn()
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body)
        c.request(method, path, body=data, headers=self._headers(
            content_type if body is not None else None, token))
        r = c.getresponse()
        raw = r.read()
        c.close()
        ctype = r.getheader("Content-Type", "")
        parsed = json.loads(raw) if raw and ctype.startswith("application/json") else raw
        return Response(r.status, r.headers, parsed)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body, content_type=MERGE, **kw):
        return self.request("PATCH", path, body, content_type=content_type, **kw)

    def delete(self, path, body=None):
        return self.request("DELETE", path, body)

    @contextlib.contextmanager
    def watch(self, query):
        c = self._conn()
        c.request("GET", f"{BASE}?watch=1&{query}", headers=self._headers(None, None))
        r = c.getresponse()
        try:
            yield Watch(r)
        finally:
            c.close()


class Watch:
    def __init__(self, response):
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self.buffer = b""

    def next(self):
        """The next event, or None at the clean end of the stream; a stream cut short raises
        IncompleteRead (readline() would hide that)."""
        while b"\n" not in self.buffer:
            data = self.response.read1(65536)
            if not data:
                assert not self.buffer, f"stream ended inside an event: {self.buffer!r}"
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def take(self, n):
        return [self.next() for _ in range(n)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return apiserver.make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_tls(tmp_path_factory):
    return apiserver.make_tls(tmp_path_factory.mktemp("other-tls"), name="another CA")


def start(tls, crd=FIXTURE_CRD, **kw):
    return apiserver.ApiServer(crd, TOKEN, tls.cert, tls.key, namespace=NS, **kw).start()


@pytest.fixture
def api(tls):
    a = start(tls)
    yield a
    a.stop()
    assert not a.internal_errors, a.internal_errors[0]


@pytest.fixture
def client(api, tls):
    return Client(api.port, TOKEN, tls.ca)


def curl(*args, ca, token=TOKEN):
    cmd = ["curl", "-sS", "--max-time", "10", "--cacert", str(ca)]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True)


# --- authentication and TLS ---------------------------------------------------------------------

def test_requests_without_the_right_token_get_401_with_a_status(api, client):
    for token in ("", "wrong"):
        r = client.request("GET", BASE, token=token)
        assert r.status == 401
        assert r.body == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Failure", "message": "Unauthorized",
                          "reason": "Unauthorized", "code": 401}
    assert client.get(BASE).status == 200


def test_a_new_token_replaces_the_old_one_at_once(api, client):
    api.token = "rotated"
    assert client.get(BASE).status == 401
    assert client.request("GET", BASE, token="rotated").status == 200


def test_tls_verifies_with_its_ca_by_name_and_address_and_fails_with_another(api, tls,
                                                                               other_tls):
    for host in ("localhost", "127.0.0.1"):
        assert Client(api.port, TOKEN, tls.ca, host=host).get(BASE).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(api.port, TOKEN, other_tls.ca).get(BASE)
    ok = curl("-o", "/dev/null", "-w", "%{http_code}", f"https://localhost:{api.port}{BASE}",
              ca=tls.ca)
    assert (ok.returncode, ok.stdout) == (0, "200")
    bad = curl(f"https://localhost:{api.port}{BASE}", ca=other_tls.ca)
    assert bad.returncode == 60, bad.stderr  # peer certificate cannot be authenticated
    api.wait_for(lambda: api.tls_failures, what="the server to see the refused handshake")


def test_tls_is_1_2_or_later(api, tls):
    ctx = ssl.create_default_context(cafile=tls.ca)
    with socket.create_connection(("127.0.0.1", api.port)) as s, \
            ctx.wrap_socket(s, server_hostname="localhost") as t:
        assert t.version() in ("TLSv1.2", "TLSv1.3")
    old = ssl.create_default_context(cafile=tls.ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", api.port)) as s:
            old.wrap_socket(s, server_hostname="localhost")


# --- create, get, list ----------------------------------------------------------------------

def test_create_get_and_list_with_field_selector(api, client):
    r = client.post(BASE, node("worker-1"))
    assert r.status == 201
    m = r.body["metadata"]
    assert m["generation"] == 1 and m["uid"] and m["creationTimestamp"].endswith("Z")
    assert m["namespace"] == NS and int(m["resourceVersion"]) > 0
    assert client.post(BASE, node("worker-2")).status == 201

    got = client.get(f"{BASE}/worker-1")
    assert got.status == 200 and got.body == r.body

    listed = client.get(f"{BASE}?fieldSelector={quote('metadata.name=worker-2')}").body
    assert listed["kind"] == "MultiNicNodeConfigList"
    assert listed["apiVersion"] == "multinic.io/v1alpha1"
    assert listed["metadata"]["resourceVersion"] == api.resource_version
    assert [i["metadata"]["name"] for i in listed["items"]] == ["worker-2"]
    assert listed["items"][0]["kind"] == "MultiNicNodeConfig"
    assert [i["metadata"]["name"] for i in client.get(BASE).body["items"]] == \
        ["worker-1", "worker-2"]
    assert client.get(f"{BASE}?fieldSelector=metadata.name%3Dnone").body["items"] == []
    assert len(client.get("/apis/multinic.io/v1alpha1/multinicnodeconfigs").body["items"]) == 2


def test_create_of_an_existing_name_is_409_and_get_of_a_missing_one_404(api, client):
    client.post(BASE, node("worker-1"))
    r = client.post(BASE, node("worker-1"))
    assert (r.status, r.body["reason"]) == (409, "AlreadyExists")
    assert r.body["message"] == 'multinicnodeconfigs.multinic.io "worker-1" already exists'
    r = client.get(f"{BASE}/nope")
    assert r.status == 404
    assert r.body == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                      "status": "Failure", "reason": "NotFound",
                      "message": 'multinicnodeconfigs.multinic.io "nope" not found',
                      "details": {"name": "nope", "group": "multinic.io",
                                  "kind": "multinicnodeconfigs"}, "code": 404}


def test_create_drops_status_sets_system_fields_and_checks_namespace_and_kind(api, client):
    obj = node("worker-1")
    obj["status"] = {"state": "Configured"}
    obj["metadata"].update(uid="mine", generation=7, creationTimestamp=None)
    r = client.post(BASE, obj)
    assert r.status == 201 and "status" not in r.body
    assert r.body["metadata"]["uid"] != "mine" and r.body["metadata"]["generation"] == 1
    other = node("worker-2")
    other["metadata"]["namespace"] = "elsewhere"
    assert client.post(BASE, other).status == 400
    nokind = node("worker-3")
    del nokind["kind"]
    assert client.post(BASE, nokind).status == 400
    with_rv = node("worker-4")
    with_rv["metadata"]["resourceVersion"] = "5"
    assert client.post(BASE, with_rv).status == 500  # as the real server answers


def test_generate_name_makes_a_unique_name(api, client):
    obj = node("x")
    obj["metadata"] = {"generateName": "worker-"}
    name = client.post(BASE, obj).body["metadata"]["name"]
    assert name.startswith("worker-") and len(name) == len("worker-") + 5


def test_wrong_paths_methods_and_media_types_get_a_status(api, client):
    assert client.get("/apis/multinic.io/v1alpha1/namespaces/x/other").status == 404
    assert client.get("/apis/multinic.io/v9/namespaces/x/multinicnodeconfigs").status == 404
    assert client.delete(BASE).status == 405
    client.post(BASE, node("worker-1"))
    r = client.request("POST", BASE, json.dumps(node("w")).encode(),
                       content_type="application/x-www-form-urlencoded")
    assert (r.status, r.body["reason"]) == (415, "UnsupportedMediaType")
    r = client.patch(f"{BASE}/worker-1", {"spec": {}},
                     content_type="application/strategic-merge-patch+json")
    assert r.status == 415  # custom resources have no strategic merge patch
    assert client.put(f"{BASE}/worker-1", dict(node("other"), metadata={"name": "other"})
                      ).status == 400
    assert client.get("/version").body["major"] == "1"
    assert client.get("/healthz").body == b"ok"
    resources = client.get("/apis/multinic.io/v1alpha1").body["resources"]
    assert {r["name"] for r in resources} == {"multinicnodeconfigs",
                                              "multinicnodeconfigs/status"}


# --- resourceVersion and generation -----------------------------------------------------------

def test_resource_version_is_one_global_counter_that_every_write_bumps(api, client):
    rvs = [int(client.post(BASE, node("a")).body["metadata"]["resourceVersion"])]
    rvs.append(int(client.post(EVENTS, {"metadata": {"name": "e1"}, "involvedObject": {
        "namespace": NS, "name": "a"}, "reason": "R", "message": "m"}).body[
        "metadata"]["resourceVersion"]))
    rvs.append(int(client.post(BASE, node("b")).body["metadata"]["resourceVersion"]))
    rvs.append(int(client.patch(f"{BASE}/a", {"metadata": {"labels": {"x": "1"}}}).body[
        "metadata"]["resourceVersion"]))
    assert rvs == sorted(set(rvs))
    assert client.get(BASE).body["metadata"]["resourceVersion"] == str(rvs[-1])
    assert client.get(f"{BASE}/b").body["metadata"]["resourceVersion"] == str(rvs[2])


def test_generation_bumps_only_when_the_spec_changes(api, client):
    client.post(BASE, node("w"))
    gen = lambda r: r.body["metadata"]["generation"]  # noqa: E731
    r = client.patch(f"{BASE}/w", {"metadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}}})
    assert gen(r) == 1
    assert gen(client.patch(f"{BASE}/w/status", {"status": {"state": "Configured"}})) == 1
    r = client.patch(f"{BASE}/w", {"spec": {"interfaces": [
        {"id": 0, "macAddress": "fa:16:3e:00:00:01", "address": "10.1.0.12",
         "cidr": "10.1.0.0/24"}]}})
    assert gen(r) == 2
    rv = r.body["metadata"]["resourceVersion"]
    same = client.patch(f"{BASE}/w", {"spec": {"nodeName": "w"}})
    assert gen(same) == 2
    assert same.body["metadata"]["resourceVersion"] == rv  # a no-op writes nothing
    assert api.resource_version == rv


# --- the status subresource -------------------------------------------------------------------

def test_status_subresource_changes_only_status_and_the_object_never_status(api, client):
    assert api.object_path("w", "status") == f"{BASE}/w/status"
    client.post(BASE, node("w"))
    r = client.patch(f"{BASE}/w/status", {"status": {"state": "Configured"},
                                          "spec": {"nodeName": "changed"},
                                          "metadata": {"labels": {"x": "y"},
                                                       "finalizers": ["a.io/b"]}})
    assert r.status == 200
    assert r.body["status"] == {"state": "Configured"}
    assert r.body["spec"]["nodeName"] == "w"
    assert "labels" not in r.body["metadata"] and "finalizers" not in r.body["metadata"]

    r = client.patch(f"{BASE}/w", {"status": {"state": "Failed"}, "spec": {"note": "n"}})
    assert r.body["status"] == {"state": "Configured"} and r.body["spec"]["note"] == "n"

    whole = client.get(f"{BASE}/w").body
    whole["status"] = {"state": "Pending"}
    whole["spec"]["note"] = "put"
    r = client.put(f"{BASE}/w", whole)
    assert r.status == 200
    assert r.body["status"] == {"state": "Configured"} and r.body["spec"]["note"] == "put"

    whole = r.body
    whole["status"] = {"state": "Pending"}
    whole["spec"]["note"] = "ignored"
    r = client.put(f"{BASE}/w/status", whole)
    assert r.body["status"] == {"state": "Pending"} and r.body["spec"]["note"] == "put"
    assert client.get(f"{BASE}/w/status").body == r.body


# --- patches ----------------------------------------------------------------------------------

def test_merge_patch_null_deletes_a_key_and_lists_are_replaced_whole(api, client):
    obj = node("w", note="hello", tags=["a", "b"])
    obj["metadata"]["labels"] = {"keep": "1", "drop": "2"}
    client.post(BASE, obj)
    r = client.patch(f"{BASE}/w", {"metadata": {"labels": {"drop": None, "new": "3"}},
                                   "spec": {"note": None, "tags": ["c"]}})
    assert r.status == 200
    assert r.body["metadata"]["labels"] == {"keep": "1", "new": "3"}
    assert "note" not in r.body["spec"] and r.body["spec"]["tags"] == ["c"]
    assert r.body["spec"]["interfaces"] == obj["spec"]["interfaces"]


def test_json_patch_applies_operations_and_a_failed_test_is_422(api, client):
    client.post(BASE, node("w"))
    ops = [{"op": "test", "path": "/spec/nodeName", "value": "w"},
           {"op": "add", "path": "/metadata/finalizers", "value": ["multinic.io/cleanup"]},
           {"op": "replace", "path": "/spec/interfaces/0/mtu", "value": 9000}]
    r = client.patch(f"{BASE}/w", ops, content_type="application/json-patch+json")
    assert r.status == 200
    assert r.body["metadata"]["finalizers"] == ["multinic.io/cleanup"]
    assert r.body["spec"]["interfaces"][0]["mtu"] == 9000
    r = client.patch(f"{BASE}/w", [{"op": "test", "path": "/spec/nodeName", "value": "x"}],
                     content_type="application/json-patch+json")
    assert r.status == 422


def test_a_stale_resource_version_is_a_409_conflict(api, client):
    first = client.post(BASE, node("w")).body
    stale = first["metadata"]["resourceVersion"]
    client.patch(f"{BASE}/w", {"metadata": {"labels": {"a": "b"}}})

    put = copy.deepcopy(first)
    put["spec"]["note"] = "x"
    r = client.put(f"{BASE}/w", put)
    assert (r.status, r.body["reason"]) == (409, "Conflict")
    assert r.body["message"] == (
        'Operation cannot be fulfilled on multinicnodeconfigs.multinic.io "w": the object has '
        'been modified; please apply your changes to the latest version and try again')
    r = client.patch(f"{BASE}/w", {"metadata": {"resourceVersion": stale, "finalizers": []}})
    assert r.status == 409
    r = client.patch(f"{BASE}/w/status", {"metadata": {"resourceVersion": stale},
                                          "status": {"state": "Failed"}})
    assert r.status == 409

    current = client.get(f"{BASE}/w").body["metadata"]["resourceVersion"]
    r = client.patch(f"{BASE}/w", {"metadata": {"resourceVersion": current,
                                                "finalizers": ["multinic.io/cleanup"]}})
    assert r.status == 200

    del put["metadata"]["resourceVersion"]
    r = client.put(f"{BASE}/w", put)  # custom resources need the precondition on PUT
    assert (r.status, r.body["details"]["causes"][0]["field"]) == \
        (422, "metadata.resourceVersion")


# --- deletion -----------------------------------------------------------------------------------

def test_delete_with_a_finalizer_marks_the_object_then_dropping_it_deletes(api, client):
    obj = node("w")
    obj["metadata"]["finalizers"] = ["multinic.io/cleanup"]
    created = client.post(BASE, obj).body
    with client.watch(f"resourceVersion={created['metadata']['resourceVersion']}"
                      "&timeoutSeconds=5") as w:
        r = client.delete(f"{BASE}/w")
        assert r.status == 200 and r.body["kind"] == "MultiNicNodeConfig"
        m = r.body["metadata"]
        assert m["deletionTimestamp"] and m["deletionGracePeriodSeconds"] == 0
        assert m["generation"] == 2
        assert client.get(f"{BASE}/w").status == 200
        again = client.delete(f"{BASE}/w")
        assert again.status == 200 and again.body["metadata"]["resourceVersion"] == \
            m["resourceVersion"]

        r = client.patch(f"{BASE}/w", {"metadata": {"finalizers": ["multinic.io/cleanup",
                                                                   "other.io/x"]}})
        assert r.status == 422 and r.body["details"]["causes"][0]["reason"] == \
            "FieldValueForbidden"
        assert client.patch(f"{BASE}/w/status", {"status": {"state": "Pending"}}).status == 200

        r = client.patch(f"{BASE}/w", {"metadata": {"finalizers": None}})
        assert r.status == 200 and not r.body["metadata"].get("finalizers")
        assert client.get(f"{BASE}/w").status == 404

        events = w.take(3)
        assert [e["type"] for e in events] == ["MODIFIED", "MODIFIED", "DELETED"]
        assert events[0]["object"]["metadata"]["deletionTimestamp"]
        assert int(events[2]["object"]["metadata"]["resourceVersion"]) == \
            int(events[1]["object"]["metadata"]["resourceVersion"]) + 1


def test_delete_without_finalizers_is_immediate_and_answers_a_success_status(api, client):
    uid = client.post(BASE, node("w")).body["metadata"]["uid"]
    r = client.delete(f"{BASE}/w")
    assert r.status == 200
    assert r.body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "w", "group": "multinic.io",
                                  "kind": "multinicnodeconfigs", "uid": uid}}
    assert client.get(f"{BASE}/w").status == 404
    assert client.delete(f"{BASE}/w").status == 404


def test_delete_preconditions_are_checked(api, client):
    client.post(BASE, node("w"))
    r = client.delete(f"{BASE}/w", {"kind": "DeleteOptions", "apiVersion": "v1",
                                    "preconditions": {"uid": "other"}})
    assert r.status == 409
    assert client.get(f"{BASE}/w").status == 200


# --- watch ------------------------------------------------------------------------------------

def test_watch_from_a_lists_version_sees_changes_in_order_and_ends_at_timeout(api, client):
    client.post(BASE, node("before"))
    rv = client.get(BASE).body["metadata"]["resourceVersion"]
    t0 = time.monotonic()
    with client.watch(f"resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true") as w:
        assert w.status == 200
        assert w.headers["Transfer-Encoding"] == "chunked"
        assert w.headers["Content-Type"] == "application/json"
        api.create(node("w"))
        api.update_spec("w", dict(node("w")["spec"], note="x"))
        api.set_status("w", {"state": "Configured"})
        api.delete("w")
        events = w.take(4)
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
        assert {e["object"]["metadata"]["name"] for e in events} == {"w"}
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert rvs == sorted(rvs) and rvs[0] > int(rv)
        assert events[1]["object"]["metadata"]["generation"] == 2
        assert w.next() is None  # the server ends the stream cleanly
    assert 0.9 < time.monotonic() - t0 < 3


def test_max_watch_timeout_ends_every_watch_early_and_cleanly(api, client):
    api.max_watch_timeout = 0
    t0 = time.monotonic()
    with client.watch(f"resourceVersion={api.resource_version}&timeoutSeconds=60") as w:
        assert w.status == 200
        assert w.next() is None  # ended cleanly, at once
    assert time.monotonic() - t0 < 5
    api.clear_faults()
    assert api.max_watch_timeout is None


def test_watch_with_a_field_selector_sees_only_that_object(api, client):
    rv = api.resource_version
    with client.watch(f"resourceVersion={rv}&fieldSelector=metadata.name%3Db"
                      "&timeoutSeconds=2") as w:
        api.create(node("a"))
        api.create(node("b"))
        api.patch("a", {"metadata": {"labels": {"x": "1"}}})
        api.patch("b", {"metadata": {"labels": {"x": "1"}}})
        events = w.take(2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == \
        [("ADDED", "b"), ("MODIFIED", "b")]


def test_watch_with_a_label_selector_sees_objects_enter_and_leave_it(api, client):
    api.create(node("a"))
    with client.watch(f"resourceVersion={api.resource_version}&labelSelector=role%3Dx"
                      "&timeoutSeconds=2") as w:
        api.patch("a", {"metadata": {"labels": {"role": "x"}}})
        api.patch("a", {"metadata": {"labels": {"role": "y"}}})
        events = w.take(2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_watch_without_a_version_starts_with_the_current_objects(api, client):
    api.create(node("a"))
    api.create(node("b"))
    with client.watch("timeoutSeconds=2") as w:
        first = w.take(2)
        api.create(node("c"))
        third = w.next()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in first + [third]] == \
        [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_watch_from_a_version_older_than_the_history_gets_a_410_error_event(tls):
    api = start(tls, history=3)
    try:
        client = Client(api.port, TOKEN, tls.ca)
        rv = api.resource_version
        for i in range(5):
            api.create(node(f"w{i}"))
        with client.watch(f"resourceVersion={rv}&timeoutSeconds=5") as w:
            assert w.status == 200
            error = w.next()
            assert w.next() is None
        assert error["type"] == "ERROR"
        status = error["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        assert status["message"].startswith(f"too old resource version: {rv} (")
        # Within the history a watch works.
        with client.watch(f"resourceVersion={int(api.resource_version) - 2}"
                          "&timeoutSeconds=1") as w:
            assert [e["type"] for e in w.take(2)] == ["ADDED", "ADDED"]
    finally:
        api.stop()


def test_watch_history_is_kept_per_resource(tls):
    api = start(tls, history=3)
    try:
        client = Client(api.port, TOKEN, tls.ca)
        rv = api.resource_version
        api.create(node("a"))
        for i in range(5):
            assert client.post(EVENTS, bridge_event(f"e{i}")).status == 201
        with client.watch(f"resourceVersion={rv}&timeoutSeconds=2") as w:
            assert w.next()["type"] == "ADDED"  # Events did not push it out of the history
    finally:
        api.stop()


def test_compact_and_expire_next_watch_make_watches_get_410(api, client):
    rv = api.resource_version
    api.create(node("a"))
    api.compact()
    with client.watch(f"resourceVersion={rv}&timeoutSeconds=2") as w:
        assert w.next()["object"]["code"] == 410
    with client.watch(f"resourceVersion={api.resource_version}&timeoutSeconds=2") as w:
        api.create(node("b"))  # up to date: no error
        assert w.next()["type"] == "ADDED"
    api.expire_next_watch()
    with client.watch(f"resourceVersion={api.resource_version}&timeoutSeconds=2") as w:
        assert w.next()["object"]["code"] == 410
    assert api.requests(kind="watch")[-1].code == 200


def test_watch_sends_bookmarks_with_the_current_version_when_asked(api, client):
    api.bookmark_interval = 0.1
    api.create(node("a"))
    rv = api.resource_version
    with client.watch(f"resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=2") as w:
        e = w.next()
    assert e == {"type": "BOOKMARK", "object": {
        "kind": "MultiNicNodeConfig", "apiVersion": "multinic.io/v1alpha1",
        "metadata": {"resourceVersion": rv}}}
    with client.watch(f"resourceVersion={rv}&timeoutSeconds=2") as w:
        time.sleep(0.3)
        api.create(node("b"))
        assert w.next()["type"] == "ADDED"  # no bookmark without allowWatchBookmarks


def test_watch_with_curl_streams_lines_and_exits_0_at_timeout(api, tls):
    rv = api.resource_version
    p = subprocess.Popen(["curl", "-sS", "-N", "--cacert", tls.ca, "-H",
                          f"Authorization: Bearer {TOKEN}",
                          f"{api.url}{BASE}?watch=1&resourceVersion={rv}&timeoutSeconds=1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    api.wait_for(lambda: api.open_watches() == 1, what="curl's watch")
    api.create(node("a"))
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["ADDED"]


def test_wait_for_may_use_the_api_in_its_predicate(api, client):
    threading.Timer(0.1, lambda: api.create(node("late"))).start()
    assert api.wait_for(lambda: client.get(f"{BASE}/late").status == 200, timeout=3)


def test_a_closed_watch_connection_is_noticed(api, client):
    with client.watch("resourceVersion=1000&timeoutSeconds=30"):
        api.wait_for(lambda: api.open_watches() == 1, what="the watch")
    api.wait_for(lambda: api.open_watches() == 0, timeout=3, what="the watch to end")


# --- faults -----------------------------------------------------------------------------------

def test_fail_answers_the_next_matching_requests_with_the_code(api, client):
    client.post(BASE, node("w"))
    api.fail(count=2, code=500, method="PATCH", kind="status")
    patch = {"status": {"state": "Configured"}}
    r = client.patch(f"{BASE}/w/status", patch)
    assert (r.status, r.body["kind"], r.body["reason"]) == (500, "Status", "InternalError")
    assert client.get(f"{BASE}/w").status == 200
    assert client.patch(f"{BASE}/w", {"spec": {"note": "x"}}).status == 200
    assert client.patch(f"{BASE}/w/status", patch).status == 500
    assert client.patch(f"{BASE}/w/status", patch).status == 200
    assert api.counts()[("PATCH", "status")] == 3
    assert client.get(f"{BASE}/w").body["status"] == {"state": "Configured"}

    api.fail(count=1, code=503, path="watch=1")
    with client.watch("timeoutSeconds=1") as w:
        assert w.status == 503 and w.headers["Retry-After"] == "1"
    api.fail(count=None, code=429)
    assert client.get(BASE).status == 429 and client.get(BASE).status == 429
    api.clear_faults()
    assert client.get(BASE).status == 200


def test_fail_can_let_the_first_matching_requests_through(api, client):
    client.post(BASE, node("w"))
    api.fail(count=None, code=500, method="PATCH", kind="status", skip=2)
    patch = {"status": {"state": "Configured"}}

    codes = [client.patch(f"{BASE}/w/status", patch).status for _ in range(4)]

    assert codes == [200, 200, 500, 500]
    assert client.get(f"{BASE}/w").status == 200


def test_delay_answers_late(api, client):
    api.delay(0.3, count=1, method="GET")
    t0 = time.monotonic()
    assert client.get(BASE).status == 200
    assert time.monotonic() - t0 >= 0.3
    t0 = time.monotonic()
    client.get(BASE)
    assert time.monotonic() - t0 < 0.3


def test_hold_keeps_requests_unanswered_until_released(api, client):
    client.post(BASE, node("w"))
    api.hold(count=1, method="PATCH", kind="status")
    answers = []
    t = threading.Thread(target=lambda: answers.append(
        client.patch(f"{BASE}/w/status", {"status": {"state": "InProgress"}})))
    t.start()
    held = api.wait_for(api.held, timeout=5, what="the held request")
    assert [(r.method, r.kind, r.body) for r in held] == \
        [("PATCH", "status", {"status": {"state": "InProgress"}})]
    # Held: not answered, so neither recorded nor applied; other requests go on.
    assert client.get(f"{BASE}/w").body.get("status") is None
    assert api.count("PATCH", "status") == 0 and not answers

    api.release()
    t.join(5)
    assert answers[0].status == 200 and api.held() == []
    assert client.patch(f"{BASE}/w/status", {"status": {"state": "Failed"}}).status == 200


def test_hanging_watches_send_nothing_and_outlive_their_timeout(api, client):
    api.hang_watches = True
    with client.watch("timeoutSeconds=1") as w:
        assert w.status == 200
        api.wait_for(lambda: api.open_watches() == 1, what="the watch")
        api.create(node("a"))
        w.response.fp.raw._sock.settimeout(3)  # well past the watch's timeoutSeconds
        with pytest.raises((socket.timeout, TimeoutError)):
            w.next()
        assert api.open_watches() == 1
    # The client's going is noticed; new watches are normal again once cleared.
    api.wait_for(lambda: api.open_watches() == 0, timeout=5, what="the watch to end")
    api.clear_faults()
    with client.watch("timeoutSeconds=1") as w:
        assert w.next()["object"]["metadata"]["name"] == "a"


def test_drop_watches_cuts_open_streams_abruptly_or_ends_them_cleanly(api, client):
    with client.watch("timeoutSeconds=30") as w:
        api.wait_for(lambda: api.open_watches() == 1, what="the watch")
        assert api.drop_watches() == 1
        with pytest.raises((http.client.IncompleteRead, ssl.SSLError, ConnectionError)):
            w.next()
    with client.watch("timeoutSeconds=30") as w:
        api.wait_for(lambda: api.open_watches() == 1, what="the watch")
        api.drop_watches(clean=True)
        assert w.next() is None
    api.wait_for(lambda: api.open_watches() == 0, what="no watch")


def test_fragmented_watch_events_arrive_whole(api, client):
    api.fragment_watch = True
    with client.watch(f"resourceVersion={api.resource_version}&timeoutSeconds=2") as w:
        api.create(node("a"))
        assert w.next()["object"]["metadata"]["name"] == "a"


def test_restart_keeps_objects_port_and_versions_and_cuts_watches(api, client):
    api.create(node("a"))
    rv = api.resource_version
    with client.watch(f"resourceVersion={rv}&timeoutSeconds=30") as w:
        api.wait_for(lambda: api.open_watches() == 1, what="the watch")
        port = api.port
        api.stop()
        with pytest.raises((http.client.IncompleteRead, ssl.SSLError, ConnectionError)):
            w.next()
    with pytest.raises(OSError):
        client.get(BASE)
    api.start()
    assert api.port == port
    assert client.get(f"{BASE}/a").status == 200
    assert int(client.post(BASE, node("b")).body["metadata"]["resourceVersion"]) > int(rv)


def test_every_request_is_recorded_with_its_answer(api, client):
    client.post(BASE, node("w"))
    client.patch(f"{BASE}/w/status?fieldManager=t", {"status": {"state": "Failed"}})
    client.request("GET", BASE, token="bad")
    reqs = api.requests()
    assert [(r.method, r.kind, r.code) for r in reqs] == [
        ("POST", "collection", 201), ("PATCH", "status", 200), ("GET", "collection", 401)]
    assert reqs[1].body == {"status": {"state": "Failed"}}
    assert reqs[1].query == {"fieldManager": "t"} and reqs[1].content_type == MERGE
    assert api.count("PATCH", "status") == 1
    api.clear_requests()
    assert api.requests() == []


# --- validation -------------------------------------------------------------------------------

def bad_mac(name="w", mac="fa:16:3e:00:00:0g"):
    obj = node(name)
    obj["spec"]["interfaces"][0]["macAddress"] = mac
    return obj


def test_validation_refuses_a_bad_mac_with_the_field_named(api, client):
    r = client.post(BASE, bad_mac())
    assert (r.status, r.body["reason"]) == (422, "Invalid")
    assert r.body["message"].startswith('MultiNicNodeConfig.multinic.io "w" is invalid: '
                                        'spec.interfaces[0].macAddress: Invalid value: '
                                        '"fa:16:3e:00:00:0g"')
    assert r.body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "spec.interfaces[0].macAddress",
        "message": 'Invalid value: "fa:16:3e:00:00:0g": spec.interfaces[0].macAddress in '
                   "body should match '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$'"}]
    assert client.get(f"{BASE}/w").status == 404
    # As Go's RE2, `$` is the end of the text: a trailing newline does not match.
    assert client.post(BASE, bad_mac(mac="fa:16:3e:00:00:01\n")).status == 422

    client.post(BASE, node("w"))
    r = client.patch(f"{BASE}/w", {"spec": {"interfaces": bad_mac()["spec"]["interfaces"]}})
    assert r.status == 422
    r = client.patch(f"{BASE}/w/status", {"status": {"state": "Bogus"}})
    assert r.status == 422
    assert r.body["details"]["causes"][0]["field"] == "status.state"
    assert r.body["details"]["causes"][0]["reason"] == "FieldValueNotSupported"


def test_validation_switched_off_lets_a_bad_spec_in(api, client):
    api.validate = False
    assert client.post(BASE, bad_mac("a")).status == 201
    api.validate = True
    assert api.create(bad_mac("b"), validate=False)["spec"]["interfaces"][0]["macAddress"] == \
        "fa:16:3e:00:00:0g"
    with pytest.raises(apiserver.ApiError) as info:
        api.create(bad_mac("c"))
    assert info.value.code == 422


def test_an_invalid_stored_value_does_not_block_other_changes(api, client):
    """Validation ratcheting, as in Kubernetes 1.30 and later."""
    api.create(bad_mac("w"), validate=False)
    assert client.patch(f"{BASE}/w", {"metadata": {"finalizers": ["multinic.io/cleanup"]}}
                        ).status == 200
    assert client.patch(f"{BASE}/w/status", {"status": {"state": "Failed"}}).status == 200
    assert client.patch(f"{BASE}/w", {"spec": {"note": "x"}}).status == 200
    r = client.patch(f"{BASE}/w", {"spec": {"interfaces": bad_mac(mac="zz")["spec"][
        "interfaces"]}})
    assert r.status == 422  # a new invalid value is refused


def test_schema_checks_types_required_ranges_formats_and_list_keys(api, client):
    obj = node("w")
    obj["spec"]["interfaces"][0].update(mtu="1450", address="10.1.0.300")
    del obj["spec"]["interfaces"][0]["cidr"]
    obj["spec"]["interfaces"].append(dict(node("w")["spec"]["interfaces"][0], mtu=67))
    obj["spec"]["tags"] = ["a", "a"]
    r = client.post(BASE, obj)
    assert r.status == 422
    causes = {(c["field"], c["reason"]) for c in r.body["details"]["causes"]}
    assert causes == {
        ("spec.interfaces[0].mtu", "FieldValueTypeInvalid"),
        ("spec.interfaces[0].address", "FieldValueInvalid"),
        ("spec.interfaces[0].cidr", "FieldValueRequired"),
        ("spec.interfaces[1].mtu", "FieldValueInvalid"),
        ("spec.interfaces[1]", "FieldValueDuplicate"),
        ("spec.tags[1]", "FieldValueDuplicate")}
    nospec = node("x")
    del nospec["spec"]
    assert client.post(BASE, nospec).body["details"]["causes"][0]["field"] == "spec"
    bad_name = node("Not_A_Name")
    assert client.post(BASE, bad_name).body["details"]["causes"][0]["field"] == "metadata.name"


def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(api, client):
    obj = node("w")
    obj["spec"]["surprise"] = 1
    obj["spec"]["interfaces"][0]["extra"] = "x"
    obj["metadata"]["bogus"] = 1
    r = client.post(BASE, obj)
    assert r.status == 201
    assert "surprise" not in r.body["spec"] and "extra" not in r.body["spec"]["interfaces"][0]
    assert "bogus" not in r.body["metadata"]
    assert sorted(r.headers.get_all("Warning")) == [
        '299 - "unknown field \\"metadata.bogus\\""',
        '299 - "unknown field \\"spec.interfaces[0].extra\\""',
        '299 - "unknown field \\"spec.surprise\\""']
    obj["metadata"] = {"name": "strict"}
    r = client.post(f"{BASE}?fieldValidation=Strict", obj)
    assert r.status == 400 and "strict decoding error" in r.body["message"]


def test_defaults_apply_and_nulls_of_non_nullable_fields_go(api, client):
    obj = node("w", note=None, instanceId=None)
    r = client.post(BASE, obj)
    assert r.status == 201
    assert r.body["spec"]["resyncSeconds"] == 300  # the fixture's default
    assert r.body["spec"]["note"] is None  # nullable: kept
    assert "instanceId" not in r.body["spec"]


@pytest.mark.skipif(not REAL_CRD.exists(), reason="crds/multinicnodeconfigs.yaml not written yet")
def test_the_projects_crd_accepts_the_sample_and_refuses_a_bad_mac(tls):
    import yaml
    api = start(tls, crd=REAL_CRD)
    try:
        client = Client(api.port, TOKEN, tls.ca)
        sample = yaml.safe_load(SAMPLE.read_text())
        assert client.post(BASE, sample).status == 201
        bad = copy.deepcopy(sample)
        bad["metadata"]["name"] = bad["spec"]["nodeName"] = "other"
        bad["spec"]["interfaces"][1]["macAddress"] = "fa-16-3e-0a-17-3b"
        r = client.post(BASE, bad)
        assert r.status == 422
        assert [c["field"] for c in r.body["details"]["causes"]] == \
            ["spec.interfaces[1].macAddress"]
    finally:
        api.stop()
    assert not api.internal_errors


# --- events -----------------------------------------------------------------------------------

def bridge_event(name="w", ns=NS, **extra):
    """An Event shaped as multinic-bridge posts one."""
    e = {"apiVersion": "v1", "kind": "Event",
         "metadata": {"generateName": name, "namespace": ns},
         "involvedObject": {"apiVersion": "multinic.io/v1alpha1", "kind": "MultiNicNodeConfig",
                            "name": name, "namespace": ns, "uid": "u", "resourceVersion": "1"},
         "reason": "Configured", "message": "2 NICs configured", "type": "Normal",
         "source": {"component": "multinic-bridge", "host": name},
         "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
         "count": 1, "reportingComponent": "multinic-bridge", "reportingInstance": name}
    e.update(extra)
    return e


def test_events_are_created_listed_and_checked_like_core_events(api, client):
    r = client.post(EVENTS, bridge_event(surplus=1))
    assert r.status == 201
    assert r.body["metadata"]["name"].startswith("w") and "surplus" not in r.body
    assert r.headers["Warning"] == '299 - "unknown field \\"surplus\\""'
    client.post(EVENTS, bridge_event("v"))
    listed = client.get(f"{EVENTS}?fieldSelector=involvedObject.name%3Dw").body
    assert listed["kind"] == "EventList" and listed["apiVersion"] == "v1"
    assert [e["reason"] for e in listed["items"]] == ["Configured"]
    assert "kind" not in listed["items"][0]  # items of a built-in list carry no kind
    assert [e["involvedObject"]["name"] for e in api.events()] == ["w", "v"]
    assert api.events(involved="v")[0]["source"]["component"] == "multinic-bridge"

    mismatch = bridge_event()
    mismatch["involvedObject"]["namespace"] = "elsewhere"
    r = client.post(EVENTS, mismatch)
    assert r.status == 422
    assert r.body["details"]["causes"][0]["field"] == "involvedObject.namespace"
    assert client.post(EVENTS, bridge_event(count="one")).status == 400
    noname = bridge_event()
    noname["metadata"] = {}
    assert client.post(EVENTS, noname).status == 422
    assert client.get(f"{BASE}?fieldSelector=spec.nodeName%3Dw").status == 400


# --- the CLI ----------------------------------------------------------------------------------

def test_cli_prints_its_port_serves_takes_faults_and_stops_on_sigterm(tls, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    p = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "apiserver" / "apiserver.py"), "--port", "0",
         "--cert", tls.cert, "--key", tls.key, "--token-file", str(token_file),
         "--crd", str(FIXTURE_CRD), "--load", str(SAMPLE), "--print-port"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline())
        url = f"https://localhost:{port}"
        name = "viola2-biz-worker01"
        r = curl("-w", "\n%{http_code}", f"{url}{BASE}/{name}", ca=tls.ca)
        body, code = r.stdout.rsplit("\n", 1)
        assert code == "200" and json.loads(body)["metadata"]["name"] == name
        r = curl("-X", "POST", "-d", '{"fail": {"count": 1, "code": 503}}',
                 f"{url}/_test/faults", ca=tls.ca, token=None)
        assert json.loads(r.stdout)["faults"][0]["code"] == 503
        r = curl("-o", "/dev/null", "-w", "%{http_code}", f"{url}{BASE}", ca=tls.ca)
        assert r.stdout == "503"
        r = curl("-o", "/dev/null", "-w", "%{http_code}", f"{url}{BASE}", ca=tls.ca)
        assert r.stdout == "200"
        counts = json.loads(curl(f"{url}/_test/counts", ca=tls.ca, token=None).stdout)
        assert {"method": "GET", "kind": "collection", "count": 2} in counts
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
