"""Replies and properties carry exactly the D-Bus types the API documents."""
import time
import xml.etree.ElementTree as ET

import dbus

from conftest import PRODUCT_UUID, REPO, add_case01_nics, case01_spec


def test_apply_results_have_the_documented_types(node, daemon):
    add_case01_nics(node)

    state, results = daemon.apply_raw(case01_spec())

    assert isinstance(state, dbus.String)
    assert results.signature == "a{sv}"
    for r in results:
        assert isinstance(r["id"], dbus.UInt32)
        for key in ("macAddress", "name", "state", "message"):
            assert isinstance(r[key], dbus.String), key
        assert isinstance(r["changes"], dbus.Array) and r["changes"].signature == "s"


def test_properties_have_the_documented_types_and_follow_apply(node, daemon):
    add_case01_nics(node)
    types = {"Version": dbus.String, "State": dbus.String, "Interfaces": dbus.Array,
             "LastApply": dbus.UInt64, "LastError": dbus.String, "Persistence": dbus.String,
             "InstanceId": dbus.String}
    start = int(time.time() * 1e6)

    daemon.apply(case01_spec())

    for name, kind in types.items():
        assert isinstance(daemon.client.prop(name), kind), name
    assert daemon.prop("Version")
    assert daemon.prop("InstanceId").lower() == PRODUCT_UUID
    assert start <= daemon.prop("LastApply") <= int(time.time() * 1e6)
    interfaces = daemon.prop("Interfaces")
    assert sorted(i["macAddress"] for i in interfaces) == \
        sorted(e["macAddress"] for e in case01_spec())
    assert daemon.prop("State") == "Configured"


def test_plan_changes_have_the_documented_keys(node, daemon):
    add_case01_nics(node)

    changes = daemon.client.call("Plan", case01_spec(), {})

    assert changes.signature == "a{sv}" and changes
    for c in changes:
        assert {k: type(v) for k, v in c.items() if k in ("macAddress", "name", "action",
                                                           "detail")} == \
            dict.fromkeys(("macAddress", "name", "action", "detail"), dbus.String)


def _members(xml_text):
    root = ET.fromstring(xml_text)
    iface = next(i for i in root.iter("interface") if i.get("name") == "io.multinic.Agent1")
    methods = {m.get("name"): [(a.get("direction", "in"), a.get("type")) for a in m.iter("arg")]
               for m in iface.iter("method")}
    props = {p.get("name"): (p.get("type"), p.get("access")) for p in iface.iter("property")}
    return methods, props


def test_installed_introspection_xml_matches_the_live_object(daemon):
    live = daemon.bus.conn.call_blocking("io.multinic.Agent1", "/io/multinic/Agent1",
                                         "org.freedesktop.DBus.Introspectable", "Introspect",
                                         "", ())

    assert _members(live) == _members((REPO / "daemon/io.multinic.Agent1.xml").read_text())
