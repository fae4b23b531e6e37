"""Apply and Remove are authorized by the real polkitd: root at once, the bridge's user by the
shipped rule, everyone else denied; the calls still run one at a time in arrival order."""
import json
import pwd
import re
import subprocess
import threading
import time

import pytest

from conftest import (NOBODY, add_case01_nics, assert_nic_configured, assert_nic_released,
                      case01_spec, daemon_context, poll)
from polkit import ACTIONS, OPERATOR_AUTHENTICATES, Polkit

DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
BUSY = "io.multinic.Agent1.Error.Busy"
APPLY, REMOVE = ACTIONS
ALLOW_INTERACTIVE_AUTHORIZATION = 0x4  # the D-Bus header flag
ORIGINAL_NAMES = {"fa:16:3e:00:00:01": "ens4", "fa:16:3e:00:00:02": "ens5"}


class BusRecorder:
    """busctl monitor on the whole bus, read by a thread. sync() returns what the bus carried
    before a marker call the test makes itself, so an answered call's traffic is all there."""

    def __init__(self, bus):
        self.bus = bus
        self.messages = []
        self.markers = 0
        self.proc = subprocess.Popen(["busctl", f"--address={bus.address}", "--json=short",
                                      "monitor"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        ready = self.proc.stderr.readline()
        assert "Monitoring" in ready, ready + self.proc.stderr.read()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.messages.append(json.loads(line))

    def wait(self, predicate, what, timeout=10):
        return poll(lambda: predicate(list(self.messages)), timeout=timeout, what=what)

    def sync(self):
        self.markers += 1
        marker = f"io.multinic.test.Marker{self.markers}"
        self.bus.conn.name_has_owner(marker)
        msgs = self.wait(lambda ms: next((ms[:i] for i, m in enumerate(ms)
                                          if marker in json.dumps(m.get("payload"))), None),
                         what=f"the monitor to see {marker}")
        return msgs

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.reader.join(5)


def polkit_checks(messages):
    """(subject bus name, action, flags) of each CheckAuthorization call."""
    out = []
    for m in messages:
        if m["type"] == "method_call" and m.get("member") == "CheckAuthorization":
            (kind, subject), action, details, flags, cancel = m["payload"]["data"]
            assert kind == "system-bus-name" and details == {} and cancel == ""
            out.append((subject["name"]["data"], action, flags))
    return out


def agent_calls(messages):
    return [m for m in messages if m["type"] == "method_call"
            and m.get("interface") == "io.multinic.Agent1" and m["member"] in ("Apply", "Remove")]


def caller_lines(daemon):
    """(method, uid, pid, authorization, outcome) of each "called by" log line, in order."""
    return [(m[1], int(m[2]), int(m[3]), m[4], m[5]) for m in
            re.finditer(r"^multinicd: (\w+) called by uid (\d+) pid (\d+), authorization (\S+): "
                        r"(.*)$", daemon.log(), re.M)]


def moved_spec():
    """case01 with other addresses: applying it after case01 replaces theirs."""
    spec = case01_spec()
    spec[0]["address"], spec[1]["address"] = "10.1.0.21", "10.1.0.22"
    return spec


@pytest.fixture(scope="module")
def polkit():
    p = Polkit(site_rules={"60-test-operator.rules": OPERATOR_AUTHENTICATES})
    try:
        p.start()
        yield p
    finally:
        p.close()


@pytest.fixture
def pk_daemon(request, build, node, polkit, tmp_path):
    """multinicd on the bus where polkitd runs."""
    with daemon_context(request.node, build, node, polkit.bus, tmp_path / "root") as d:
        yield d


@pytest.fixture
def recorder(polkit):
    r = BusRecorder(polkit.bus)
    yield r
    r.close()


def test_shipped_policy_declares_both_actions_with_admin_defaults(polkit):
    for action in ACTIONS:
        env = {"DBUS_SYSTEM_BUS_ADDRESS": polkit.bus.address, "PATH": "/usr/bin:/bin"}
        p = subprocess.run(["pkaction", "--verbose", "--action-id", action], capture_output=True,
                           text=True, timeout=30, env=env)
        assert p.returncode == 0, p.stderr + polkit.log()
        implicit = dict(re.findall(r"^\s*implicit (\w+):\s*(\S+)$", p.stdout, re.M))
        assert implicit == {"any": "no", "inactive": "no", "active": "auth_admin_keep"}, p.stdout
        assert re.search(r"^\s*description:\s*\S", p.stdout, re.M), p.stdout
        assert re.search(r"^\s*message:\s*\S", p.stdout, re.M), p.stdout


def test_root_changes_the_host_without_asking_polkit(node, pk_daemon, recorder):
    add_case01_nics(node)

    state, _ = pk_daemon.apply(case01_spec())
    pk_daemon.remove()

    assert state == "Configured"
    assert polkit_checks(recorder.sync()) == []
    lines = caller_lines(pk_daemon)
    assert [(m, uid, a, o) for m, uid, _, a, o in lines] == \
        [("Apply", 0, "root", "Configured"), ("Remove", 0, "root", "released")]


def test_bridge_user_may_apply_and_remove_by_the_shipped_rule(node, pk_daemon, polkit,
                                                              recorder):
    add_case01_nics(node)
    uid = polkit.users["multinic-bridge"]

    applied = pk_daemon.call_as(uid, "Apply", case01_spec(), {})
    for entry in case01_spec():
        assert_nic_configured(node, entry)
    removed = pk_daemon.call_as(uid, "Remove", {})

    assert applied.get("ok", [None])[0] == "Configured", applied
    assert [r["state"] for r in removed.get("ok", [])] == ["removed", "removed"], removed
    for entry in case01_spec():
        assert_nic_released(node, entry["macAddress"], ORIGINAL_NAMES[entry["macAddress"]],
                            entry)
    assert polkit_checks(recorder.sync()) == \
        [(applied["sender"], APPLY, 0), (removed["sender"], REMOVE, 0)]
    assert caller_lines(pk_daemon) == [
        ("Apply", uid, applied["pid"], "polkit-allowed", "Configured"),
        ("Remove", uid, removed["pid"], "polkit-allowed", "released"),
    ]


@pytest.mark.parametrize("interactive", [False, True], ids=["plain", "interactive"])
def test_nobody_is_denied_apply_and_remove_and_nothing_changes(node, pk_daemon, recorder,
                                                               interactive):
    """nobody has no session and the policy gives it no way in (allow_any no): polkit has
    nothing to ask, so even a call that allows interactive authorization is denied outright."""
    add_case01_nics(node)
    pk_daemon.apply(case01_spec())
    before, files = node.snapshot(), pk_daemon.files()

    apply = pk_daemon.call_as(NOBODY, "Apply", moved_spec(), {}, interactive=interactive)
    remove = pk_daemon.call_as(NOBODY, "Remove", {}, interactive=interactive)

    assert apply.get("error") == DENIED, apply
    assert remove.get("error") == DENIED, remove
    assert APPLY in apply["message"] and "uid 65534" in apply["message"], apply
    assert REMOVE in remove["message"], remove
    assert node.snapshot() == before
    assert pk_daemon.files() == files
    messages = recorder.sync()
    flags = 1 if interactive else 0
    assert polkit_checks(messages) == \
        [(apply["sender"], APPLY, flags), (remove["sender"], REMOVE, flags)]
    callers = (apply["sender"], remove["sender"])
    assert [bool(m["flags"] & ALLOW_INTERACTIVE_AUTHORIZATION) for m in agent_calls(messages)
            if m["sender"] in callers] == [interactive, interactive]
    assert caller_lines(pk_daemon)[1:] == [
        ("Apply", NOBODY, apply["pid"], "polkit-denied", apply["message"]),
        ("Remove", NOBODY, remove["pid"], "polkit-denied", remove["message"]),
    ]


@pytest.mark.parametrize("interactive", [False, True], ids=["plain", "interactive"])
def test_caller_polkit_wants_authenticated_gets_interactive_authorization_required(
        node, pk_daemon, polkit, recorder, interactive):
    """What a local admin's session gets from the defaults (auth_admin_keep), here from a site
    rule: polkit asks for authentication. Without the flag the caller is told to allow it; with
    it, there is no authentication agent to ask, and polkit still wants authentication."""
    add_case01_nics(node)
    uid = polkit.users["multinic-operator"]
    before = node.snapshot()

    apply = pk_daemon.call_as(uid, "Apply", case01_spec(), {}, interactive=interactive)
    remove = pk_daemon.call_as(uid, "Remove", {}, interactive=interactive)

    assert apply.get("error") == INTERACTIVE, apply
    assert remove.get("error") == INTERACTIVE, remove
    assert APPLY in apply["message"] and REMOVE in remove["message"]
    hint = "no authentication agent" if interactive else "allowing interactive authorization"
    assert hint in apply["message"], apply
    assert node.snapshot() == before
    flags = 1 if interactive else 0
    assert polkit_checks(recorder.sync()) == \
        [(apply["sender"], APPLY, flags), (remove["sender"], REMOVE, flags)]
    assert [a for _, _, _, a, _ in caller_lines(pk_daemon)] == ["polkit-challenge"] * 2


def test_nobody_may_plan_and_read_properties_without_polkit_being_asked(node, pk_daemon,
                                                                        recorder):
    add_case01_nics(node)

    plan = pk_daemon.call_as(NOBODY, "Plan", case01_spec(), {})
    props = {name: pk_daemon.call_as(NOBODY, "Get", name) for name in
             ("Version", "State", "Interfaces", "LastApply", "LastError", "Persistence",
              "InstanceId")}

    assert plan.get("ok") == pk_daemon.plan(case01_spec()) != []
    for name, reply in props.items():
        assert reply.get("ok") == pk_daemon.prop(name), (name, reply)
    assert polkit_checks(recorder.sync()) == []


def test_without_polkit_only_root_may_change_the_host(request, build, node, tmp_path):
    add_case01_nics(node)
    p = Polkit()
    try:
        p.start()
        with daemon_context(request.node, build, node, p.bus, tmp_path / "root") as d:
            uid = p.users["multinic-bridge"]
            assert d.call_as(uid, "Apply", case01_spec(), {}).get("ok"), "allowed with polkit"

            p.stop_polkitd()
            denied = d.call_as(uid, "Apply", moved_spec(), {})
            state, _ = d.apply(moved_spec())

            assert denied.get("error") == DENIED, denied
            assert "polkit is not available" in denied["message"], denied
            assert APPLY in denied["message"], denied
            assert state == "Configured"
            for entry in moved_spec():
                assert_nic_configured(node, entry)
            assert [(m, u, a) for m, u, _, a, _ in caller_lines(d)] == [
                ("Apply", uid, "polkit-allowed"), ("Apply", uid, "polkit-unavailable"),
                ("Apply", 0, "root")]
    finally:
        p.close()


class CallThread(threading.Thread):
    """daemon.call_as(...) in a thread; .result once joined."""

    def __init__(self, daemon, uid, method, *args):
        super().__init__(daemon=True)
        self.call = (daemon, uid, method, args)
        self.result = None

    def run(self):
        daemon, uid, method, args = self.call
        self.result = daemon.call_as(uid, method, *args)


def test_calls_run_in_arrival_order_while_polkit_answers_late(node, pk_daemon, polkit,
                                                              recorder):
    """With polkitd stopped, calls pile up: root's, though allowed at once, wait for the
    bridge's Apply ahead of them. Once polkit answers, the changes run in arrival order."""
    add_case01_nics(node)
    bridge, operator = polkit.users["multinic-bridge"], polkit.users["multinic-operator"]
    one_nic = [dict(case01_spec()[0], address="10.1.0.31")]
    burst = [(bridge, "Apply", case01_spec(), {}), (0, "Apply", moved_spec(), {}),
             (NOBODY, "Apply", case01_spec(), {}), (bridge, "Apply", one_nic, {}),
             (operator, "Remove", {}), (0, "Remove", {}), (bridge, "Apply", case01_spec(), {})]
    before = node.snapshot()
    threads = []

    polkit.pause()
    try:
        for n, call in enumerate(burst, 1):
            threads.append(CallThread(pk_daemon, *call))
            threads[-1].start()
            # Each call reaches multinicd before the next one is made.
            recorder.wait(lambda ms: len(agent_calls(ms)) >= n, what=f"call {n} to arrive")
        time.sleep(0.3)
        assert all(t.is_alive() for t in threads), "a call was answered while polkit was stopped"
        assert node.snapshot() == before
    finally:
        polkit.resume()
    for t in threads:
        t.join(60)

    results = [t.result for t in threads]
    assert [r.get("error") for r in results] == [None, None, DENIED, None, INTERACTIVE, None, None]
    moved = {r["macAddress"]: r for r in results[1]["ok"][1]}
    assert any(c.startswith("remove address 10.1.0.11/24")
               for c in moved["fa:16:3e:00:00:01"]["changes"]), moved
    for entry in case01_spec():
        assert_nic_configured(node, entry)
    changes = [(m, u, p) for m, u, p, a, _ in caller_lines(pk_daemon)
               if a in ("root", "polkit-allowed")]
    assert changes == [(m, u, r["pid"]) for (u, m, *_), r in zip(burst, results)
                       if "ok" in r]


def test_calls_beyond_the_queue_bound_get_busy(node, pk_daemon, polkit, recorder):
    """65 Remove calls at once while polkit is stopped: 64 wait for it, the 65th is refused."""
    burst = r"""
import json, sys, threading, dbus
def call(results):
    try:
        c = dbus.bus.BusConnection(sys.argv[1])
        c.call_blocking("io.multinic.Agent1", "/io/multinic/Agent1", "io.multinic.Agent1",
                        "Remove", "a{sv}", ({},), timeout=60)
        results.append("ok")
    except dbus.exceptions.DBusException as e:
        results.append(e.get_dbus_name())
results = []
threads = [threading.Thread(target=call, args=(results,)) for _ in range(65)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
"""
    polkit.pause()
    try:
        proc = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                 "--clear-groups", "/usr/bin/python3", "-c", burst,
                                 polkit.bus.address], stdout=subprocess.PIPE, text=True, cwd="/")
        recorder.wait(lambda ms: len(polkit_checks(ms)) >= 64 and len(agent_calls(ms)) >= 65,
                      what="64 calls waiting for polkit and a 65th")
        poll(lambda: "authorization none: busy" in pk_daemon.log(), what="the busy call's log")
    finally:
        polkit.resume()
    out, _ = proc.communicate(timeout=60)

    results = json.loads(out)
    assert set(results) == {DENIED, BUSY} and results.count(BUSY) == 1, results
    assert len(polkit_checks(recorder.sync())) == 64


def test_daemon_stops_cleanly_with_calls_waiting_for_polkit(node, pk_daemon, polkit, recorder):
    """SIGTERM while calls wait: exit 0, nothing leaked (ASan), the callers told by the bus."""
    add_case01_nics(node)
    polkit.pause()
    try:
        waiting = CallThread(pk_daemon, polkit.users["multinic-bridge"], "Apply", case01_spec(),
                             {})
        waiting.start()
        recorder.wait(lambda ms: len(polkit_checks(ms)) >= 1, what="the call to ask polkit")
        behind = CallThread(pk_daemon, 0, "Remove", {})
        behind.start()
        recorder.wait(lambda ms: len(agent_calls(ms)) >= 2, what="root's call to arrive")

        pk_daemon.stop()
    finally:
        polkit.resume()
    waiting.join(60)
    behind.join(60)

    assert waiting.result.get("error") == "org.freedesktop.DBus.Error.NoReply", waiting.result
    assert behind.result.get("error") == "org.freedesktop.DBus.Error.NoReply", behind.result


def test_harness_mounts_policy_and_users_for_polkitd_only(polkit):
    def mount_points(pid):
        with open(f"/proc/{pid}/mountinfo") as f:
            return {line.split()[4] for line in f}
    watched = {"/etc/passwd", "/etc/group", "/usr/share/polkit-1/actions",
               "/usr/share/polkit-1/rules.d", "/etc/polkit-1/rules.d"}

    assert watched <= mount_points(polkit.proc.pid)
    assert not watched & mount_points("self")
    for uid in polkit.users.values():
        with pytest.raises(KeyError):
            pwd.getpwuid(uid)
