"""A NIC with addresses multinicd did not put there is in use: refused unless allowUp."""
import re

import pytest

from conftest import NIC_SYSCTLS, TABLE_BASE, case01_spec


def test_nic_with_a_foreign_address_is_refused(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.ip("addr", "add", "192.168.7.7/24", "dev", "ens4")
    before, files = node.snapshot(), daemon.files()

    error, message = daemon.apply_error(case01_spec()[:1])

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert "ens4" in message or "interfaces[0]" in message, message
    assert node.snapshot() == before
    assert daemon.files() == files


def test_nic_with_a_foreign_address_is_configured_with_allow_up(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.ip("addr", "add", "192.168.7.7/24", "dev", "ens4")
    spec = case01_spec()[:1]

    state, results = daemon.apply(spec, {"allowUp": True})

    assert state == "Configured", results
    link = node.link_by_mac(spec[0]["macAddress"])
    assert link["ifname"] == "multinic0" and link["mtu"] == 1450
    assert f"{spec[0]['address']}/24" in node.ipv4_strings("multinic0")
    assert [r["table"] for r in node.rules_from(spec[0]["address"])] == [str(TABLE_BASE)]


# --- routes and masters that multinicd did not create -------------------------------------------

MAC = "fa:16:3e:00:00:01"


def foreign_route(node, table=None):
    """ens4 up with 10.9.0.0/24 routed through it (no address): a route multinicd did not add."""
    node.nic("ens4", MAC, up=True)
    node.ip("route", "add", "10.9.0.0/24", "dev", "ens4", *(("table", str(table)) if table else ()))
    node.wait_settled()


def foreign_route_with_address(node):
    node.nic("ens4", MAC, up=True)
    node.ip("addr", "add", "192.168.7.7/24", "dev", "ens4")
    node.ip("route", "add", "10.9.0.0/24", "dev", "ens4")
    node.wait_settled()


def bridge_port(node):
    """ens4 enslaved to br0 (bonds and VLANs cannot be created on the test kernel)."""
    node.nic("ens4", MAC)
    node.ip("link", "add", "br0", "type", "bridge")
    node.ip("link", "set", "ens4", "master", "br0")
    node.wait_settled()


IN_USE = {
    "route-main": (foreign_route, r"has routes in table 254"),
    "route-table-50": (lambda node: foreign_route(node, 50), r"has routes in table 50"),
    "route-and-address": (foreign_route_with_address, r"has (address 192\.168\.7\.7/24|routes)"),
    "bridge-port": (bridge_port, r"is enslaved to br0"),
}


@pytest.mark.parametrize("setup,why", IN_USE.values(), ids=IN_USE.keys())
def test_nic_with_a_foreign_route_or_master_is_refused(node, daemon, setup, why):
    setup(node)
    before, files = node.snapshot(), daemon.files()

    error, message = daemon.apply_error(case01_spec()[:1])

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert message.startswith("interfaces[0].macAddress: "), message
    assert "ens4" in message and "in use" in message, message
    assert re.search(why, message), message
    assert node.snapshot() == before
    assert daemon.files() == files
    assert daemon.prop("Interfaces") == []


@pytest.mark.parametrize("setup", IN_USE.values(), ids=IN_USE.keys())
def test_nic_with_a_foreign_route_or_master_is_refused_by_plan_too(node, daemon, setup):
    setup[0](node)
    before = node.snapshot()

    error, message = daemon.plan_error(case01_spec()[:1])

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert "ens4" in message, message
    assert node.snapshot() == before


def assert_taken_over(node, entry):
    """entry is configured on the NIC (its name, MTU, the spec's address, rule, table route and
    sysctls), whatever else the NIC carries."""
    link = node.link_by_mac(entry["macAddress"])
    assert (link["ifname"], link["mtu"]) == ("multinic0", entry["mtu"])
    assert "UP" in link["flags"]
    [ours] = [a for a in node.ipv4("multinic0") if a["local"] == entry["address"]]
    assert ours["prefixlen"] == 24 and ours.get("noprefixroute") is True, ours
    assert [(r["priority"], r["table"]) for r in node.rules_from(entry["address"])] == \
        [(1000, str(TABLE_BASE))]
    assert [(r["dst"], r["dev"], r.get("prefsrc")) for r in node.routes(TABLE_BASE)] == \
        [(entry["cidr"], "multinic0", entry["address"])]
    assert node.sysctls("multinic0") == NIC_SYSCTLS


def foreign_routes(node):
    return sorted((r["dst"], r.get("table", "main"), r["dev"])
                  for r in node.ip_json("-4", "route", "show", "table", "all")
                  if r["dst"] == "10.9.0.0/24")


@pytest.mark.parametrize("setup,_", IN_USE.values(), ids=IN_USE.keys())
def test_allow_up_configures_a_nic_with_a_foreign_route_or_master(node, daemon, setup, _):
    """allowUp: the NIC is configured (docs/multinicd.md, InterfaceInUse 'overridden by allowUp');
    what multinicd did not create (the route, the address, the master) is left where it was."""
    setup(node)
    routes = foreign_routes(node)
    spec = case01_spec()[:1]

    state, results = daemon.apply(spec, {"allowUp": True})

    assert state == "Configured", results
    assert results[0]["state"] == "configured", results
    assert_taken_over(node, spec[0])
    assert foreign_routes(node) == [(dst, table, "multinic0") for dst, table, _ in routes]
    master = node.link("multinic0").get("master")
    assert master == ("br0" if node.link("br0") else None)
    assert [i["state"] for i in daemon.prop("Interfaces")] == ["configured"]
    # Managed now: the same spec without allowUp is no longer refused, and changes nothing.
    state, results = daemon.apply(spec)
    assert (state, [r["state"] for r in results]) == ("Configured", ["unchanged"]), results
