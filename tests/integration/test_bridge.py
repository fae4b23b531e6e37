"""multinic-bridge end to end: a MultiNicNodeConfig in the API test server reaches multinicd in
the node's namespace, and its status, finalizer and events come back."""
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import pytest
import yaml

from conftest import (REPO, PRODUCT_UUID, assert_nic_configured, assert_nic_released, make_root,
                      nic_configured, poll)

sys.path.insert(0, str(REPO / "tests" / "apiserver"))
from apiserver import ApiServer, make_tls  # noqa: E402

CRD = REPO / "crds" / "multinicnodeconfigs.yaml"
SAMPLE = yaml.safe_load((REPO / "crds" / "samples" / "viola2-biz-worker01.yaml").read_text())
NODE = SAMPLE["metadata"]["name"]
NS = SAMPLE["metadata"]["namespace"]
FINALIZER = "multinic.io/cleanup"


def sample(**spec_changes):
    obj = copy.deepcopy(SAMPLE)
    obj["spec"]["instanceId"] = PRODUCT_UUID
    obj["spec"].update(spec_changes)
    return obj


def spec_entries(obj):
    return [dict(e) for e in obj["spec"]["interfaces"]]


class Bridge:
    """multinic-bridge from one build, pointed at the test API server and the private bus."""

    def __init__(self, build, api, tls, token_file, bus, tmp_path):
        self.cmd = [str(build / "bridge" / "multinic-bridge"), f"--api-url={api.url}",
                    f"--token-file={token_file}", f"--ca-file={tls.ca}", f"--namespace={NS}",
                    f"--node-name={NODE}", "--port=0", "--watch-timeout=5"]
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
        self.log_path = tmp_path / "bridge.log"
        self.proc = None

    def start(self, *extra):
        self.log_file = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.cmd + list(extra), stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=self.env)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(10)
            assert rc == 0, f"multinic-bridge exited {rc}:\n{self.log()}"
        self.log_file.close()

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def lines(self):
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]


@pytest.fixture
def cluster(tmp_path):
    tls = make_tls(tmp_path / "tls")
    token_file = tmp_path / "token"
    token_file.write_text("test-token\n")
    api = ApiServer(CRD, "test-token", tls.cert, tls.key, namespace=NS)
    api.start()
    try:
        yield api, tls, token_file
    finally:
        api.stop()


@pytest.fixture
def bridge(build, cluster, bus, daemon, tmp_path):
    api, tls, token_file = cluster
    b = Bridge(build, api, tls, token_file, bus, tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()
        sanitizer = [m for m in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
                     if m in b.log()]
        assert not sanitizer, b.log()


def status_of(api, name=NODE):
    obj = api.get(name)
    return (obj or {}).get("status", {})


def wait_state(api, state, generation=None, timeout=10):
    def ok():
        st = status_of(api)
        return st.get("state") == state and (generation is None or
                                             st.get("observedGeneration") == generation)
    return api.wait_for(ok, timeout=timeout, what=f"status {state}")


def add_sample_nics(node):
    for entry in SAMPLE["spec"]["interfaces"]:
        node.nic(f"ens{4 + entry['id']}", entry["macAddress"])


def test_sample_object_configures_the_node_and_reports_configured(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)

    api.create(sample())
    wait_state(api, "Configured", generation=1)

    for entry in spec_entries(SAMPLE):
        assert_nic_configured(node, entry)
    obj = api.get(NODE)
    assert FINALIZER in obj["metadata"]["finalizers"]
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Degraded"]["status"] == "False"
    assert conds["Ready"]["observedGeneration"] == 1
    assert sorted(i["name"] for i in obj["status"]["interfaceStatuses"]) == \
        ["multinic0", "multinic1"]
    assert obj["status"]["interfacesReady"] == "2/2"  # the Interfaces column
    assert [e["reason"] for e in api.events()] .count("Applied") >= 1


def test_changed_address_is_applied_and_removed_interface_released(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    wait_state(api, "Configured", generation=1)

    changed = spec_entries(SAMPLE)
    changed[0]["address"] = "11.11.11.40"
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    wait_state(api, "Configured", generation=2)
    assert_nic_configured(node, changed[0])

    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed[:1]))
    wait_state(api, "Configured", generation=3)
    assert_nic_released(node, changed[1]["macAddress"], "ens5", changed[1])
    assert [i["macAddress"] for i in status_of(api)["interfaceStatuses"]] == \
        [changed[0]["macAddress"]]
    assert status_of(api)["interfacesReady"] == "1/1"
    # The released NIC is not in the status: the Applied event names it.
    applied = api.wait_for(lambda: (lambda e: len(e) >= 3 and e)(api.events(reason="Applied")),
                           timeout=10, what="the third Applied event")
    assert applied[-1]["message"] == "multinicd: Configured; released multinic1 " \
                                     "(fa:16:3e:0a:17:3b, now ens5)"
    assert "released" not in applied[-2]["message"]


def test_deleting_the_object_removes_everything_then_the_finalizer(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    wait_state(api, "Configured")

    api.delete(NODE)
    api.wait_for(lambda: api.get(NODE) is None, timeout=10, what="the object to go")

    for entry, original in zip(spec_entries(SAMPLE), ("ens4", "ens5")):
        assert_nic_released(node, entry["macAddress"], original, entry)
    assert "Removed" in [e["reason"] for e in api.events()]


def test_spec_that_bypasses_the_schema_fails_naming_the_field(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    before = node.snapshot()
    bad = sample()
    bad["spec"]["interfaces"][1]["macAddress"] = "fa-16-3e-0a-17-3b"

    api.validate = False  # a cluster that does not enforce the CRD's schema, for any write
    api.create(bad)
    wait_state(api, "Failed", generation=1)

    st = status_of(api)
    degraded = {c["type"]: c for c in st["conditions"]}["Degraded"]
    assert degraded["status"] == "True"
    assert "spec.interfaces[1].macAddress" in degraded["message"]
    events = api.wait_for(lambda: api.events(reason="InvalidSpec"), timeout=10,
                          what="the InvalidSpec event")
    assert events[0]["type"] == "Warning"
    assert "spec.interfaces[1].macAddress" in events[0]["message"]
    assert node.snapshot() == before


def test_api_faults_and_a_daemon_restart_miss_no_generation(node, cluster, bridge, daemon):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    wait_state(api, "Configured", generation=1)

    api.fail(count=3, code=500, method="PATCH")
    api.drop_watches()
    changed = spec_entries(SAMPLE)
    changed[1]["mtu"] = 1400
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    wait_state(api, "Configured", generation=2, timeout=30)
    assert_nic_configured(node, changed[1])

    daemon.restart()
    api.expire_next_watch()
    api.drop_watches()
    changed[0]["mtu"] = 1400
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    wait_state(api, "Configured", generation=3, timeout=30)
    for entry in changed:
        assert_nic_configured(node, entry)


def test_wrong_token_is_reported_and_retried(build, node, cluster, bus, daemon, tmp_path):
    api, tls, token_file = cluster
    add_sample_nics(node)
    token_file.write_text("wrong-token\n")
    b = Bridge(build, api, tls, token_file, bus, tmp_path)
    b.start()
    try:
        api.create(sample())
        poll(lambda: "401" in b.log(), timeout=10, what="the 401 in the log")
        token_file.write_text("test-token\n")  # rotated: the bridge reads it again
        wait_state(api, "Configured", generation=1, timeout=40)
    finally:
        b.stop()


def test_wrong_ca_is_refused(build, node, cluster, bus, daemon, tmp_path):
    api, tls, token_file = cluster
    other = make_tls(tmp_path / "other-tls")
    b = Bridge(build, api, other, token_file, bus, tmp_path)
    b.start()
    try:
        api.create(sample())
        poll(lambda: "certificate" in b.log().lower() or "SSL" in b.log(), timeout=10,
             what="a TLS error in the log")
        assert "state" not in (api.get(NODE) or {}).get("status", {})
    finally:
        b.stop()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path):
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError:
        return 0, ""  # not listening (yet)


def test_metrics_health_and_readiness_on_one_port(build, node, cluster, bus, daemon, tmp_path):
    api, tls, token_file = cluster
    add_sample_nics(node)
    port = free_port()
    b = Bridge(build, api, tls, token_file, bus, tmp_path)
    b.cmd = [c for c in b.cmd if not c.startswith("--port=")] + [f"--port={port}"]
    b.start()
    try:
        poll(lambda: http_get(port, "/readyz")[0] == 200, timeout=10, what="/readyz")
        api.create(sample())
        wait_state(api, "Configured", generation=1)

        assert http_get(port, "/healthz") == (200, "ok\n")
        code, text = http_get(port, "/metrics")
        assert code == 200
        assert 'multinic_bridge_applies_total{result="configured"} 1' in text
        assert "multinic_bridge_apply_duration_seconds_count 1" in text
        assert 'multinic_bridge_interface_state{name="multinic0",mac="fa:16:3e:1c:1a:6e",' \
               'state="configured"} 1' in text
        assert "multinic_bridge_watch_restarts_total" in text
        assert http_get(port, "/nothing")[0] == 404
    finally:
        b.stop()
    for line in b.log().splitlines():
        entry = json.loads(line)  # every line one JSON object
        assert {"time", "level", "msg"} <= entry.keys(), line


def test_in_cluster_configuration_from_the_service_account(build, node, cluster, bus, daemon,
                                                          tmp_path):
    """As in a pod: API host from the environment, token, CA and namespace from the service
    account directory (a tmpfs over /run in a mount namespace of the bridge's own)."""
    api, tls, token_file = cluster
    add_sample_nics(node)
    sa = "/run/secrets/kubernetes.io/serviceaccount"
    script = (f"mount -t tmpfs tmpfs /run && mkdir -p {sa} && cp {token_file} {sa}/token && "
              f"cp {tls.ca} {sa}/ca.crt && echo {NS} > {sa}/namespace && "
              f"exec {build / 'bridge/multinic-bridge'} --port=0")
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address, NODE_NAME=NODE,
               KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api.port))
    log = tmp_path / "in-cluster.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=f,
                                stderr=subprocess.STDOUT, env=env)
    try:
        api.create(sample())
        wait_state(api, "Configured", generation=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()
    assert '"api":"https://127.0.0.1:' in log.read_text()


def test_nic_that_appears_later_turns_the_status_configured(node, cluster, bridge):
    """multinicd configures the late NIC by itself; its PropertiesChanged reaches the status."""
    api = cluster[0]
    first = SAMPLE["spec"]["interfaces"][0]
    node.nic("ens4", first["macAddress"])
    api.create(sample())
    wait_state(api, "Pending", generation=1)
    assert {i["macAddress"]: i["state"] for i in status_of(api)["interfaceStatuses"]}[
        SAMPLE["spec"]["interfaces"][1]["macAddress"]] == "pending"
    assert status_of(api)["interfacesReady"] == "1/2"
    processed = status_of(api)["lastProcessed"]
    poll(lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > processed, timeout=5,
         interval=0.05, what="the next second")

    node.nic("ens5", SAMPLE["spec"]["interfaces"][1]["macAddress"])

    wait_state(api, "Configured", generation=1)
    assert status_of(api)["interfacesReady"] == "2/2"
    # multinicd's own progress, not the bridge handling the spec again.
    assert status_of(api)["lastProcessed"] == processed
    for entry in spec_entries(SAMPLE):
        assert_nic_configured(node, entry)
    assert {i["state"] for i in status_of(api)["interfaceStatuses"]} == {"configured"}


def test_drift_multinicd_healed_becomes_a_warning_event(node, cluster, daemon, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)
    assert not api.events(reason="DriftHealed")

    node.ip("link", "set", "multinic0", "mtu", "1400")

    events = api.wait_for(lambda: api.events(reason="DriftHealed"), timeout=10,
                          what="the DriftHealed event")
    assert len(events) == 1 and events[0]["type"] == "Warning"
    assert events[0]["involvedObject"]["name"] == NODE
    assert "multinic0 (fa:16:3e:1c:1a:6e)" in events[0]["message"]
    assert "mtu found 1400, wanted 1450" in events[0]["message"]
    # Healed: the object stays Ready, not Degraded.
    assert conditions(api)["Ready"]["status"] == "True"
    assert conditions(api)["Degraded"]["status"] == "False"

    # A bridge started again does not tell the same drift twice; a new one it tells.
    watching = bridge.log().count("Watching")
    bridge.stop()
    bridge.start()
    poll(lambda: bridge.log().count("Watching") > watching, timeout=10, what="the bridge back")
    # Its first Apply would heal the next change itself, before multinicd saw it as drift.
    poll(lambda: f"Apply called by uid 0 pid {bridge.proc.pid}," in daemon.log(), timeout=10,
         what="the restarted bridge's Apply")
    node.ip("link", "set", "multinic1", "mtu", "1400")
    events = api.wait_for(lambda: (lambda e: len(e) >= 2 and e)(api.events(reason="DriftHealed")),
                          timeout=10, what="the second DriftHealed event")
    time.sleep(1)
    events = api.events(reason="DriftHealed")
    assert len(events) == 2 and "multinic1" in events[1]["message"], events


def test_nic_undone_by_a_competitor_makes_the_object_degraded(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    wait_state(api, "Configured", generation=1)
    first = SAMPLE["spec"]["interfaces"][0]
    stop = threading.Event()

    def competitor():
        while not stop.is_set():
            subprocess.run(["ip", "-n", node.ns, "rule", "del", "from", first["address"],
                            "lookup", "100"], capture_output=True)
            stop.wait(0.1)

    thread = threading.Thread(target=competitor)
    thread.start()
    try:
        def degraded():
            conds = {c["type"]: c for c in status_of(api).get("conditions", [])}
            return conds.get("Degraded", {}).get("status") == "True" and conds["Degraded"]
        cond = api.wait_for(degraded, timeout=15, what="the Degraded condition")
    finally:
        stop.set()
        thread.join()

    assert "degraded" in cond["message"]
    states = {i["macAddress"]: i["state"] for i in status_of(api)["interfaceStatuses"]}
    assert states[first["macAddress"]] == "failed"
    # The event follows the status write.
    api.wait_for(lambda: api.events(reason="Degraded"), timeout=5, what="the Degraded event")


def test_bridge_exits_when_the_system_bus_goes_so_that_it_is_restarted(build, cluster,
                                                                       tmp_path):
    from conftest import Bus
    api, tls, token_file = cluster
    bus = Bus()
    b = Bridge(build, api, tls, token_file, bus, tmp_path)
    b.start()
    try:
        poll(lambda: "Watching" in b.log(), timeout=10, what="the bridge to start")
        bus.proc.terminate()
        try:
            rc = b.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if b.proc.poll() is None:
            b.proc.kill()  # it did not go by itself: the test fails below, leaving nothing behind
            b.proc.wait()
        bus.close()
        b.log_file.close()

    assert rc == 1
    assert "Lost the system bus" in b.log()


# --- helpers for the tests below ------------------------------------------------------------------

def started_bridge(build, cluster, bus, tmp_path, *extra):
    """A bridge with extra arguments (replacing the defaults of the same option)."""
    api, tls, token_file = cluster
    b = Bridge(build, api, tls, token_file, bus, tmp_path)
    names = {e.split("=")[0] for e in extra}
    b.cmd = [c for c in b.cmd if c.split("=")[0] not in names] + list(extra)
    b.start()
    return b


def metric(port, name):
    """The value of one sample on /metrics (name with its labels), 0 if not there yet."""
    code, text = http_get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0


def conditions(api):
    return {c["type"]: c for c in status_of(api).get("conditions", [])}


def configured_and_settled(api):
    """The sample is Configured and the bridge is done with it: the Applied event, which comes
    after the status, is there."""
    wait_state(api, "Configured", generation=1)
    api.wait_for(lambda: api.events(reason="Applied"), timeout=10, what="the Applied event")


def writes(api):
    """What the bridge wrote since the last clear: status patches and events."""
    return {"status": api.count("PATCH", "status"), "events": api.count("POST", "events")}


def undo_by_hand(node, entry, original):
    """What a reboot does to a NIC that multinicd configured: no address, rule or route, its
    old name, down."""
    name, nid = entry["name"], entry["id"]
    node.ip("link", "set", name, "down")
    node.ip("addr", "flush", "dev", name)
    node.ip("rule", "del", "pref", str(1000 + nid))
    node.ip("route", "flush", "table", str(100 + nid))
    node.ip("link", "set", name, "name", original)


# --- the bus: only multinicd's own name matters ---------------------------------------------------

def test_other_clients_on_the_bus_cause_no_apply(node, cluster, bridge, bus):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)
    api.clear_requests()

    for _ in range(5):
        subprocess.run(["busctl", f"--address={bus.address}", "list"], check=True,
                       capture_output=True)
    # The bridge would answer a new owner at once; give it ample time on a loaded machine.
    time.sleep(3)

    assert writes(api) == {"status": 0, "events": 0}
    assert "applying again" not in bridge.log()


def test_daemon_restart_that_lost_the_config_is_followed_by_an_apply(node, cluster, bridge,
                                                                   daemon, tmp_path):
    """As after a reboot: the NICs lost their configuration and multinicd knows no spec; the
    generation is the same, so only the new owner of multinicd's name can bring it back."""
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    daemon.stop()
    for entry, original in zip(spec_entries(SAMPLE), ("ens4", "ens5")):
        undo_by_hand(node, entry, original)
    daemon.root = make_root(tmp_path / "fresh-root")
    daemon.start()

    for entry in spec_entries(SAMPLE):
        poll(lambda: nic_configured(node, entry), timeout=20, interval=0.2,
             what=f"{entry['name']} configured again")
    assert status_of(api)["observedGeneration"] == 1
    assert "applying again" in bridge.log()


# --- a forced apply that changes nothing writes nothing ------------------------------------------

def test_resync_that_changes_nothing_writes_no_status_and_posts_no_event(build, node, cluster,
                                                                         bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    port = free_port()
    b = started_bridge(build, cluster, bus, tmp_path, "--resync=1", f"--port={port}")
    try:
        api.create(sample())
        configured_and_settled(api)
        ready_since = conditions(api)["Ready"]["lastTransitionTime"]
        api.clear_requests()
        applied = metric(port, 'multinic_bridge_applies_total{result="configured"}')

        # Three resyncs at least, each a real Apply, over more than a second of wall time.
        poll(lambda: metric(port, 'multinic_bridge_applies_total{result="configured"}')
             >= applied + 3, timeout=30, interval=0.2, what="three resyncs")

        assert writes(api) == {"status": 0, "events": 0}, api.requests("PATCH")
        assert conditions(api)["Ready"]["status"] == "True"
        assert conditions(api)["Ready"]["lastTransitionTime"] == ready_since
    finally:
        b.stop()


# --- TLS only ------------------------------------------------------------------------------------

def test_plain_http_api_url_is_refused_before_anything_is_sent(build, cluster, bus, tmp_path):
    received = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        b = started_bridge(build, cluster, bus, tmp_path, f"--api-url=http://127.0.0.1:{port}")
        deadline = time.monotonic() + 10
        while b.proc.poll() is None and time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(65536))
                except socket.timeout:
                    received.append(b"(connected)")
        rc = b.proc.poll()
        if rc is None:
            b.proc.kill()  # it did not refuse: the test fails below
            b.proc.wait()
        b.log_file.close()

    assert rc not in (None, 0), b.log()
    assert not received, received
    error = next(line for line in b.lines() if line["level"] == "error")
    assert "--api-url" in json.dumps(error) and "https" in json.dumps(error), error


# --- readiness, API errors and the refusal's event --------------------------------------------

def test_readyz_answers_503_until_the_first_list_succeeds(build, node, cluster, bus, daemon,
                                                         tmp_path):
    api = cluster[0]
    api.fail(count=None, code=500, method="GET", kind="collection")
    port = free_port()
    b = started_bridge(build, cluster, bus, tmp_path, f"--port={port}")
    try:
        poll(lambda: api.count("GET", "collection") >= 2, timeout=15, what="two failed lists")
        assert http_get(port, "/healthz")[0] == 200
        assert http_get(port, "/readyz")[0] == 503

        api.clear_faults()
        poll(lambda: http_get(port, "/readyz")[0] == 200, timeout=30, interval=0.1,
             what="/readyz after a list that succeeded")
    finally:
        b.stop()


def test_api_500s_are_counted_as_api_errors(build, node, cluster, bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    port = free_port()
    b = started_bridge(build, cluster, bus, tmp_path, f"--port={port}")
    try:
        api.create(sample())
        configured_and_settled(api)
        before = metric(port, "multinic_bridge_api_errors_total")

        api.fail(count=3, code=500, method="PATCH", kind="status")
        api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=spec_entries(SAMPLE)[:1]))
        wait_state(api, "Configured", generation=2, timeout=60)

        assert metric(port, "multinic_bridge_api_errors_total") >= before + 3
    finally:
        b.stop()


def test_a_status_that_cannot_be_written_is_retried_each_time_later(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    def retries():
        lines = [json.loads(l) for l in bridge.log().splitlines() if l.startswith("{")]
        return [int(l["inMs"]) for l in lines if l.get("msg") == "Retrying later"]

    # InProgress goes through; every status with the outcome fails, until cleared.
    api.fail(count=None, code=500, method="PATCH", kind="status", skip=1)
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=spec_entries(SAMPLE)[:1]))
    delays = poll(lambda: len(retries()) >= 4 and retries(), timeout=40, what="four retries")
    api.clear_faults()

    # From 0.5 s, doubling, with jitter from half to one and a half of it: the fourth is 2 s
    # at least, where a backoff that starts over would stay under 0.75 s.
    assert delays[3] >= 2000, delays
    wait_state(api, "Configured", generation=2, timeout=60)


def test_spec_the_daemon_refuses_gets_a_warning_event_naming_the_field(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    before = node.snapshot()
    other = sample(instanceId="00000000-0000-4000-8000-000000000001")
    api.create(other)
    wait_state(api, "Failed", generation=1)

    events = api.wait_for(lambda: api.events(reason="InstanceMismatch"), timeout=10,
                          what="the InstanceMismatch event")
    assert len(events) == 1
    assert events[0]["type"] == "Warning"
    assert "instanceId" in events[0]["message"]
    assert events[0]["involvedObject"]["name"] == NODE
    assert not api.events(reason="Applied")
    assert node.snapshot() == before


# --- a server that ends every watch at once -------------------------------------------------------

def test_server_that_answers_every_watch_with_410_is_not_hammered(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    api.expire_next_watch(count=1000)
    api.drop_watches(clean=True)
    api.clear_requests()
    time.sleep(3)
    watches, lists = api.count("GET", "watch"), api.count("GET", "collection")

    # Each 410 means a list and a new watch: about one of each a second.
    assert 1 <= watches <= 10 and lists <= 10, (watches, lists)
    api.clear_faults()
    changed = spec_entries(SAMPLE)
    changed[0]["mtu"] = 1400
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    wait_state(api, "Configured", generation=2, timeout=30)


def test_server_that_ends_every_watch_at_once_is_not_hammered(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    api.max_watch_timeout = 0
    api.drop_watches(clean=True)  # the open one too
    api.clear_requests()
    time.sleep(3)
    watches = api.count("GET", "watch")

    # About one a second; a loop without a pause makes hundreds.
    assert 1 <= watches <= 10, watches
    # Changes still arrive.
    api.max_watch_timeout = None
    changed = spec_entries(SAMPLE)
    changed[0]["mtu"] = 1400
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    wait_state(api, "Configured", generation=2, timeout=30)


# --- helpers for the tests below ------------------------------------------------------------------

OTHER_NODE = "viola2-biz-worker00"  # lists before NODE


def retries(bridge):
    """The delays of the retries the bridge scheduled so far, in ms."""
    return [int(line["inMs"]) for line in bridge.lines() if line.get("msg") == "Retrying later"]


def log_lines(bridge, **fields):
    return [line for line in bridge.lines()
            if all(line.get(k) == v for k, v in fields.items())]


def change_mtu(api, mtu=1400):
    """A new generation: the first NIC's MTU changed. Returns the new entries."""
    changed = spec_entries(SAMPLE)
    changed[0]["mtu"] = mtu
    api.update_spec(NODE, dict(api.get(NODE)["spec"], interfaces=changed))
    return changed


# --- list and watch: what the bridge asks for, and what it makes of refusals ---------------------

def test_list_and_watch_select_the_nodes_own_object_from_the_lists_version(build, node, cluster,
                                                                          bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    other = sample()
    other["metadata"]["name"] = other["spec"]["nodeName"] = OTHER_NODE
    for i, entry in enumerate(other["spec"]["interfaces"]):
        entry["address"] = f"11.11.11.{90 + i}"
    api.create(other)
    api.create(sample())
    assert [o["metadata"]["name"] for o in api.list()] == [OTHER_NODE, NODE]
    listed_at = api.resource_version
    b = started_bridge(build, cluster, bus, tmp_path)
    try:
        wait_state(api, "Configured", generation=1)
        # A change of the other node's object while the bridge watches; then one of its own,
        # which it can only apply after it saw (or skipped) the other's.
        api.update_spec(OTHER_NODE, dict(other["spec"], interfaces=other["spec"]["interfaces"][:1]))
        changed = change_mtu(api)
        wait_state(api, "Configured", generation=2)
    finally:
        b.stop()

    for entry in changed:
        assert_nic_configured(node, entry)
    untouched = api.get(OTHER_NODE)
    assert "status" not in untouched and FINALIZER not in \
        untouched["metadata"].get("finalizers", [])
    assert not [e for e in api.events() if e["involvedObject"]["name"] == OTHER_NODE]
    lists, watches = api.requests("GET", "collection"), api.requests("GET", "watch")
    assert lists[0].query["fieldSelector"] == f"metadata.name={NODE}"
    assert watches[0].query["fieldSelector"] == f"metadata.name={NODE}"
    # The first watch goes on from the list's version: nothing in between is missed.
    assert watches[0].query["resourceVersion"] == listed_at


def test_watch_answered_410_lists_again_and_gets_the_change_made_meanwhile(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    # 410 Gone as the answer's status (as from etcd, without the watch cache), to every watch:
    # only a list can bring what changed.
    api.fail(count=None, code=410, kind="watch")
    api.drop_watches()
    gone = api.wait_for(lambda: [r for r in api.requests("GET", "watch") if r.code == 410],
                        timeout=10, what="a watch answered 410")
    changed = change_mtu(api)
    wait_state(api, "Configured", generation=2, timeout=30)
    api.clear_faults()

    assert [r for r in api.requests("GET", "collection") if r.time > gone[0].time]
    assert_nic_configured(node, changed[0])
    relists = log_lines(bridge, code="410")
    assert relists and relists[0]["level"] == "info", bridge.log()
    assert "listing again" in relists[0]["msg"] and "too old" in relists[0]["detail"]
    assert "Not a watch event" not in bridge.log()


def test_watch_from_a_compacted_version_gets_the_410_event_and_lists_again(node, cluster, bridge):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    # The next watch waits while the object changes and the history is forgotten, so that it
    # asks for a version that is gone: the watch cache's 200 with an ERROR event 410.
    api.hold(kind="watch")
    api.drop_watches()
    api.wait_for(api.held, timeout=10, what="the next watch")
    lists = api.count("GET", "collection")
    changed = change_mtu(api)
    api.compact()
    api.release()

    wait_state(api, "Configured", generation=2, timeout=30)
    assert api.count("GET", "collection") > lists
    assert_nic_configured(node, changed[0])
    assert [l for l in log_lines(bridge, code="410") if "ERROR event" in l["detail"]]


@pytest.mark.parametrize("code", [401, 403, 500])
def test_refused_watch_is_logged_with_its_code_and_message_and_retried(node, cluster, bridge,
                                                                       code):
    api, tls, token_file = cluster
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    if code == 401:
        api.token = "rotated-token"  # after the first list: the next watch is refused
    else:
        api.fail(count=None, code=code, kind="watch")
    api.drop_watches()
    line = poll(lambda: (log_lines(bridge, code=str(code)) or [None])[0], timeout=10,
                what=f"the {code} in the log")
    assert line["level"] == "warning"
    message = {401: "Unauthorized", 403: "forbidden (injected)",
               500: "injected by the test server"}[code]
    assert f"HTTP {code}: " in line["detail"] and message in line["detail"], line
    assert "Not a watch event" not in bridge.log()

    if code == 401:
        token_file.write_text("rotated-token\n")  # rotated: read again for the next request
    else:
        api.clear_faults()
    changed = change_mtu(api)
    wait_state(api, "Configured", generation=2, timeout=60)
    assert_nic_configured(node, changed[0])


def test_watch_that_hangs_silently_is_given_up_after_its_timeout_and_a_margin(build, node, cluster,
                                                                             bus, daemon,
                                                                             tmp_path):
    """A watch asked for 2 s that sends nothing and never ends (a dead connection) is given up
    2 s plus the bridge's 15 s margin later, well within the wait below."""
    api = cluster[0]
    add_sample_nics(node)
    b = started_bridge(build, cluster, bus, tmp_path, "--watch-timeout=2")
    try:
        api.create(sample())
        configured_and_settled(api)
        api.clear_requests()
        api.hang_watches = True
        api.drop_watches(clean=True)
        api.wait_for(lambda: api.count("GET", "watch") >= 1 and api.open_watches() == 1,
                     timeout=10, what="a hanging watch")
        api.hang_watches = False  # the watch after it works

        changed = change_mtu(api)
        wait_state(api, "Configured", generation=2, timeout=60)
    finally:
        b.stop()
    assert_nic_configured(node, changed[0])
    assert [l for l in log_lines(b, msg="Watch failed") if "Timeout" in l.get("detail", "")]


# --- InProgress and lastProcessed -------------------------------------------------------------

def test_in_progress_is_written_before_apply_and_last_processed_only_once_done(node, cluster,
                                                                              bridge, daemon):
    api = cluster[0]
    add_sample_nics(node)
    api.hold(method="PATCH", kind="status")
    api.create(sample())

    try:
        held = api.wait_for(api.held, timeout=10, what="the first status write")
        assert held[0].body["status"]["state"] == "InProgress"
        assert "lastProcessed" not in held[0].body["status"]  # nothing processed yet
        # The bridge waits for this write before it calls multinicd: no Apply has run.
        assert daemon.prop("LastApply") == 0
        assert [node.name_of(e["macAddress"]) for e in spec_entries(SAMPLE)] == ["ens4", "ens5"]
    finally:
        api.release()
    configured_and_settled(api)
    patches = api.requests("PATCH", "status")
    first = [r.body["status"] for r in patches]
    assert [s["state"] for s in first] == ["InProgress", "Configured"]
    # InProgress arrived before the Apply ran, the outcome after it (one clock, one machine).
    applied = daemon.prop("LastApply") / 1e6
    assert patches[0].time < applied < patches[1].time, (patches[0].time, applied,
                                                          patches[1].time)
    done = first[1]["lastProcessed"]

    # A second later by the clock the status is written with, the next generation.
    poll(lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) > done, timeout=5,
         interval=0.05, what="the next second")
    api.clear_requests()
    change_mtu(api)
    wait_state(api, "Configured", generation=2)
    second = [r.body["status"] for r in api.requests("PATCH", "status")]
    assert [s["state"] for s in second] == ["InProgress", "Configured"]
    assert second[0]["lastProcessed"] == done
    assert second[1]["lastProcessed"] > done


# --- a retry pending does not hold up what is new --------------------------------------------

def test_new_generation_and_multinicd_start_do_not_wait_for_a_pending_retry(build, node, cluster,
                                                                           bus, daemon,
                                                                           tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    daemon.stop()
    # The first retry 60..180 s after a failure: anything sooner is not the retry.
    b = started_bridge(build, cluster, bus, tmp_path, "--retry-backoff=120,600")
    try:
        api.create(sample())
        wait_state(api, "Failed", generation=1)
        delays = poll(lambda: retries(b), timeout=10, what="the retry")
        assert delays[0] >= 60000, delays

        changed = change_mtu(api)
        wait_state(api, "Failed", generation=2, timeout=20)  # tried at once, and failed again
        daemon.start()
        wait_state(api, "Configured", generation=2, timeout=20)
    finally:
        b.stop()
    for entry in changed:
        assert_nic_configured(node, entry)
    assert len(retries(b)) == 2


def test_deletion_does_not_wait_for_a_pending_retry(build, node, cluster, bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    b = started_bridge(build, cluster, bus, tmp_path, "--retry-backoff=120,600")
    try:
        api.create(sample())
        configured_and_settled(api)
        api.fail(count=None, code=500, method="PATCH", kind="status")
        change_mtu(api)
        poll(lambda: retries(b), timeout=10, what="the retry of the status write")

        api.delete(NODE)
        api.wait_for(lambda: api.get(NODE) is None, timeout=20, what="the object to go")
    finally:
        b.stop()
    for entry, original in zip(spec_entries(SAMPLE), ("ens4", "ens5")):
        assert_nic_released(node, entry["macAddress"], original, entry)


# --- multinicd away or denying: one warning event, not one per retry ---------------------------

def test_multinicd_not_running_gives_one_warning_event_not_one_per_retry(build, node, cluster,
                                                                         bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    daemon.stop()
    b = started_bridge(build, cluster, bus, tmp_path)
    try:
        api.create(sample())
        wait_state(api, "Failed", generation=1)
        assert conditions(api)["Ready"]["reason"] == "DaemonUnavailable"
        poll(lambda: len(retries(b)) >= 3, timeout=30, what="three retries")

        events = api.events(reason="DaemonUnavailable")
        assert len(events) == 1, events
        assert events[0]["type"] == "Warning" and "io.multinic.Agent1" in events[0]["message"]
        daemon.start()
        wait_state(api, "Configured", generation=1, timeout=30)
    finally:
        b.stop()
    assert len(api.events(reason="DaemonUnavailable")) == 1


@contextlib.contextmanager
def unprivileged_bridge(build, cluster, bus, tmp_path):
    """The bridge as a user that polkit (absent on this bus) does not allow to Apply."""
    from conftest import NOBODY
    api, tls, token_file = cluster
    readable = Path(tempfile.mkdtemp(prefix="multinic-bridge-"))
    try:
        readable.chmod(0o755)
        for src in (tls.ca, token_file):
            shutil.copy(src, readable)
        b = Bridge(build, api, types.SimpleNamespace(ca=readable / Path(tls.ca).name),
                   readable / token_file.name, bus, tmp_path)
        b.cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + b.cmd
        b.start()
        try:
            yield b
        finally:
            b.stop()
    finally:
        shutil.rmtree(readable)


def test_denied_apply_gives_one_access_denied_event(build, node, cluster, bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    before = node.snapshot()
    with unprivileged_bridge(build, cluster, bus, tmp_path) as b:
        api.create(sample())
        wait_state(api, "Failed", generation=1)
        assert conditions(api)["Ready"]["reason"] == "AccessDenied"
        poll(lambda: len(retries(b)) >= 3, timeout=30, what="three retries")
    events = api.events(reason="AccessDenied")
    assert len(events) == 1 and events[0]["type"] == "Warning", events
    assert "io.multinic.agent1.apply" in events[0]["message"]
    assert node.snapshot() == before


def test_new_generation_failing_the_same_way_gets_its_own_warning_event(build, node, cluster,
                                                                          bus, daemon, tmp_path):
    api = cluster[0]
    add_sample_nics(node)
    daemon.stop()
    b = started_bridge(build, cluster, bus, tmp_path)
    try:
        api.create(sample())
        wait_state(api, "Failed", generation=1)
        api.wait_for(lambda: api.events(reason="DaemonUnavailable"), timeout=10,
                     what="the first generation's event")

        change_mtu(api)
        wait_state(api, "Failed", generation=2, timeout=20)
        api.wait_for(lambda: len(api.events(reason="DaemonUnavailable")) >= 2, timeout=10,
                     what="the second generation's event")
        # Each failed attempt posts its event before it logs its retry: two more retries mean
        # a whole attempt of the second generation after its event.
        told = len(retries(b))
        poll(lambda: len(retries(b)) >= told + 2, timeout=30, what="two more retries")
    finally:
        b.stop()
    events = api.events(reason="DaemonUnavailable")
    assert len(events) == 2, events
    assert all(e["type"] == "Warning" and "io.multinic.Agent1" in e["message"] for e in events)


def test_failure_that_changes_its_reason_within_a_run_gets_no_second_event(build, node, cluster,
                                                                           bus, daemon, tmp_path):
    """Not running, then running but denying the call: one run of failures, one event."""
    api = cluster[0]
    add_sample_nics(node)
    daemon.stop()
    with unprivileged_bridge(build, cluster, bus, tmp_path) as b:
        api.create(sample())
        wait_state(api, "Failed", generation=1)
        assert conditions(api)["Ready"]["reason"] == "DaemonUnavailable"
        api.wait_for(lambda: api.events(reason="DaemonUnavailable"), timeout=10,
                     what="the DaemonUnavailable event")

        daemon.start()
        api.wait_for(lambda: conditions(api)["Ready"]["reason"] == "AccessDenied", timeout=20,
                     what="the status to say AccessDenied")
        told = len(retries(b))
        poll(lambda: len(retries(b)) >= told + 2, timeout=30, what="two more retries")
    assert len(api.events(reason="DaemonUnavailable")) == 1
    assert not api.events(reason="AccessDenied")


# --- a Remove that fails on the bridge's side -----------------------------------------------

class HollowAgent:
    """Owns multinicd's name and answers every method call with an empty reply, which no client
    of multinicd can read. Speaks the D-Bus wire protocol itself (little-endian), just enough for
    that: the tests' dbus-python has no main loop to serve calls with."""

    def __init__(self, bus):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(bus.address.split("path=")[1].split(",")[0])
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() +
                          b"\r\n")
        assert self.sock.recv(4096).startswith(b"OK "), "the bus refused the fake multinicd"
        self.sock.sendall(b"BEGIN\r\n")
        self.serial = 0
        self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", b"")
        name = b"io.multinic.Agent1"
        self.call("/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su",
                  struct.pack("<I", len(name)) + name + b"\0\0" + struct.pack("<I", 0))
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def pad(buf, n):
        buf += b"\0" * (-len(buf) % n)

    def send(self, kind, fields, body=b""):
        self.serial += 1
        head = bytearray(b"l" + bytes([kind, 0, 1]) + struct.pack("<II", len(body), self.serial))
        array = bytearray()
        for code, sig, value in fields:  # a(yv), each entry 8-aligned from the message's start
            array += b"\0" * (-(16 + len(array)) % 8) + bytes([code, 1]) + sig.encode() + b"\0"
            if sig == "u":
                array += b"\0" * (-(16 + len(array)) % 4) + struct.pack("<I", value)
            elif sig == "g":
                array += bytes([len(value)]) + value.encode() + b"\0"
            else:
                array += b"\0" * (-(16 + len(array)) % 4) + struct.pack("<I", len(value)) + \
                    value.encode() + b"\0"
        head += struct.pack("<I", len(array)) + array
        self.pad(head, 8)
        self.sock.sendall(bytes(head) + body)

    def call(self, path, interface, member, signature, body):
        fields = [(1, "o", path), (2, "s", interface), (3, "s", member),
                  (6, "s", "org.freedesktop.DBus")]
        self.send(1, fields + ([(8, "g", signature)] if signature else []), body)

    def serve(self):
        data = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            while len(data) >= 16:
                body_len, serial, fields_len = struct.unpack_from("<III", data, 4)
                size = 16 + fields_len + (-(16 + fields_len) % 8) + body_len
                if len(data) < size:
                    break
                message, data = data[:size], data[size:]
                if message[1] == 1 and not message[2] & 1:  # a call that wants a reply
                    self.send(2, [(5, "u", serial), (6, "s", self.sender(message, fields_len))])

    @staticmethod
    def sender(message, fields_len):
        i = 16
        while i < 16 + fields_len:
            i += -i % 8
            code, n = message[i], message[i + 1]
            sig, i = chr(message[i + 2]), i + 3 + n
            if sig in "so":
                i += -i % 4
                length = struct.unpack_from("<I", message, i)[0]
                if code == 7:
                    return message[i + 4:i + 4 + length].decode()
                i += 4 + length + 1
            elif sig == "u":
                i += -i % 4 + 4
            else:
                i += 1 + message[i] + 1
        return ""

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def test_remove_whose_answer_cannot_be_read_is_told_with_why(node, cluster, bridge, bus, daemon):
    api = cluster[0]
    add_sample_nics(node)
    api.create(sample())
    configured_and_settled(api)

    daemon.stop()
    hollow = HollowAgent(bus)
    try:
        poll(lambda: bus.name_owner_pid("io.multinic.Agent1") == os.getpid(), timeout=10,
             what="the fake multinicd to own the name")
        api.delete(NODE)
        events = api.wait_for(lambda: api.events(reason="RemoveFailed"), timeout=10,
                              what="the RemoveFailed event")
    finally:
        hollow.close()
    assert events[0]["type"] == "Warning"
    assert "Remove" in events[0]["message"] and "Bad message" in events[0]["message"], events
    failed = log_lines(bridge, msg="Remove failed; keeping the finalizer")
    assert failed and failed[0]["detail"] == events[0]["message"], failed

    daemon.start()
    api.wait_for(lambda: api.get(NODE) is None, timeout=20, what="the object to go")
    assert len(api.events(reason="RemoveFailed")) == 1


# --- every line on stderr is JSON -----------------------------------------------------------------

def test_libmicrohttpd_messages_are_json_log_lines(build, node, cluster, bus, daemon, tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        b = started_bridge(build, cluster, bus, tmp_path, f"--port={taken.getsockname()[1]}")
        rc = b.proc.wait(10)
        b.log_file.close()
    assert rc == 1
    port = free_port()
    b = started_bridge(build, cluster, bus, tmp_path, f"--port={port}")
    try:
        poll(lambda: http_get(port, "/healthz")[0] == 200, timeout=10, what="/healthz")
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"GET /metrics HTTP/1.1\r\nHo")  # and hangs up mid-request
        poll(lambda: "incomplete request" in b.log(), timeout=10, what="libmicrohttpd's message")
    finally:
        b.stop()

    lines = [json.loads(line) for line in b.log().splitlines()]  # each one JSON
    httpd = [l for l in lines if l["msg"] == "HTTP server for /metrics"]
    assert [l for l in httpd if "Address already in use" in l["detail"]], lines
    assert [l for l in httpd if "incomplete request" in l["detail"]], lines


@pytest.mark.parametrize("args,option", [
    (["--no-such-option"], "--no-such-option"),
    (["--port"], "--port"),
    (["--retry-backoff=60,1"], "--retry-backoff=60,1"),
    (["--watch-timeout=0"], "--watch-timeout=0"),
    (["stray"], "stray"),
])
def test_usage_errors_are_json_log_lines_naming_the_option(build, args, option):
    p = subprocess.run([str(build / "bridge" / "multinic-bridge"), *args], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1
    lines = [json.loads(line) for line in p.stderr.splitlines()]
    assert len(lines) == 1 and lines[0]["level"] == "error", p.stderr
    assert option in lines[0].values(), lines
