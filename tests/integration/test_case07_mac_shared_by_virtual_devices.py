"""Field case 07: only the physical-like NIC is selected among devices that share its MAC."""
import dbus
import pytest

from conftest import assert_nic_configured, run

MAC = "fa:16:3e:00:00:07"
SPEC = [{"id": 0, "macAddress": MAC, "address": "10.1.0.11", "cidr": "10.1.0.0/24", "mtu": 1450}]

# How to add a virtual device that shares ens4's MAC; kinds this kernel lacks are skipped.
VIRTUAL = {
    "bridge": ["link", "add", "br0", "address", MAC, "type", "bridge"],
    "vlan": ["link", "add", "link", "ens4", "name", "ens4.10", "type", "vlan", "id", "10"],
    "macvlan": ["link", "add", "link", "ens4", "name", "mv0", "address", MAC, "type", "macvlan"],
    "vxlan": ["link", "add", "vx0", "address", MAC, "type", "vxlan", "id", "10", "dstport", "4789"],
}


def add_virtual(node, kind):
    out = run("ip", "-n", node.ns, *VIRTUAL[kind], check=False)
    names = {l["ifname"] for l in node.links()}
    if not names - {"lo", "eth0", "ens4"}:
        pytest.skip(f"this kernel cannot create a {kind} device {out}")
    return (names - {"lo", "eth0", "ens4"}).pop()


@pytest.mark.parametrize("kind", VIRTUAL)
def test_virtual_device_sharing_the_mac_is_never_selected(node, daemon, kind):
    node.nic("ens4", MAC)
    virtual = add_virtual(node, kind)
    before = node.link(virtual)

    state, results = daemon.apply(SPEC)

    assert state == "Configured", results
    assert_nic_configured(node, SPEC[0])
    after = node.link(virtual)
    assert after is not None, f"{virtual} was renamed"
    assert after["address"] == before["address"]
    assert node.ipv4(virtual) == []


def test_same_mac_listed_twice_is_refused_before_any_change(node, daemon):
    node.nic("ens4", MAC)
    before, files = node.snapshot(), daemon.files()
    twice = SPEC + [dict(SPEC[0], id=1, address="10.1.0.12", macAddress=MAC.upper())]

    name, message = daemon.apply_error(twice)

    assert name == "io.multinic.Agent1.Error.InvalidSpec"
    assert message.startswith("interfaces[1].macAddress")
    assert node.snapshot() == before
    assert daemon.files() == files


def test_two_physical_like_nics_with_one_mac_are_refused_as_ambiguous(node, daemon):
    node.nic("ens4", MAC)
    node.nic("ens5", MAC)
    before = node.snapshot()

    try:
        state, results = daemon.apply(SPEC)
    except dbus.exceptions.DBusException as e:  # a refusal of the whole call is as good
        message = e.get_dbus_message()
    else:
        assert (state, results[0]["state"]) == ("Failed", "failed"), results
        message = results[0]["message"]
    assert "ens4" in message and "ens5" in message, message
    assert node.snapshot() == before
