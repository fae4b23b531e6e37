"""Without polkit on the bus only root may change the host; anyone may look and plan; and only
root may own multinicd's bus name, so that no other process can pose as multinicd.
(The session bus of these tests has no polkitd; test_polkit.py runs one.)"""
import json
import subprocess

import mnbus
from conftest import NOBODY, add_case01_nics, case01_spec

DENIED = "org.freedesktop.DBus.Error.AccessDenied"
# Asks the bus at argv[1] for the name argv[2]; prints {"reply": RequestName's answer} or
# {"error": name, "message": text}.
REQUEST_NAME = """
import json, sys
import dbus
conn = dbus.bus.BusConnection(sys.argv[1])
try:
    print(json.dumps({"reply": int(conn.request_name(sys.argv[2],
                                                     dbus.bus.NAME_FLAG_DO_NOT_QUEUE))}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
"""


def test_non_root_apply_and_remove_are_denied_and_change_nothing(node, daemon):
    add_case01_nics(node)
    before, files = node.snapshot(), daemon.files()

    apply = daemon.call_as(NOBODY, "Apply", case01_spec(), {})
    remove = daemon.call_as(NOBODY, "Remove", {}, interactive=True)

    assert apply.get("error") == DENIED, apply
    assert remove.get("error") == DENIED, remove
    assert "io.multinic.agent1.apply" in apply["message"], apply
    assert "polkit is not available" in remove["message"], remove
    assert node.snapshot() == before
    assert daemon.files() == files
    assert f"Remove called by uid {NOBODY} pid {remove['pid']}, authorization " \
        "polkit-unavailable" in daemon.log()


def test_non_root_remove_after_root_apply_is_denied(node, daemon):
    add_case01_nics(node)
    daemon.apply(case01_spec())
    before = node.snapshot()

    remove = daemon.call_as(NOBODY, "Remove", {})

    assert remove.get("error") == DENIED, remove
    assert node.snapshot() == before


def test_non_root_plan_and_property_reads_work(node, daemon):
    add_case01_nics(node)

    plan = daemon.call_as(NOBODY, "Plan", case01_spec(), {})

    assert plan.get("ok") == daemon.plan(case01_spec())
    assert plan["ok"], "an empty plan for unconfigured NICs"
    for name in ("Version", "State", "Interfaces", "LastApply", "LastError", "Persistence",
                 "InstanceId"):
        reply = daemon.call_as(NOBODY, "Get", name)
        assert reply.get("ok") == daemon.prop(name), (name, reply)


def request_name_as(bus, uid, gid):
    """RequestName(io.multinic.Agent1) from a process of bare uid and gid (no other groups)."""
    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                        "/usr/bin/python3", "-c", REQUEST_NAME, bus.address, mnbus.BUS_NAME],
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert p.returncode == 0, f"RequestName as uid {uid} failed: {p.stderr}"
    return json.loads(p.stdout)


def test_only_root_may_own_the_bus_name(bus):
    """The bus (tests/system-bus.conf.in, Debian's defaults) reads units/io.multinic.Agent1.conf,
    the shipped policy: nobody does not get the name, not even in group root; root does."""
    assert not bus.conn.name_has_owner(mnbus.BUS_NAME), "a multinicd still runs on the bus"

    for gid in (NOBODY, 0):
        reply = request_name_as(bus, NOBODY, gid)

        assert reply.get("error") == DENIED, (gid, reply)
        assert "not allowed to own the service" in reply["message"], reply
        assert not bus.conn.name_has_owner(mnbus.BUS_NAME)
    # The same request from root: the name is free, and the denial above was the policy's.
    assert request_name_as(bus, 0, 0) == {"reply": 1}  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
