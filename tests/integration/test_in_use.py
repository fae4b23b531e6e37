"""A NIC with addresses multinicd did not put there is in use: refused unless allowUp."""
from conftest import TABLE_BASE, case01_spec


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
