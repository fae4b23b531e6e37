"""Field case 10: an MTU beyond what the device allows fails that NIC only."""
from conftest import add_case01_nics, assert_nic_configured, case01_spec


def test_mtu_above_device_maximum_fails_that_nic_only(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    spec[0]["mtu"] = 70000
    ens4 = node.link("ens4")

    state, results = daemon.apply(spec)

    first, second = results
    assert first["state"] == "failed"
    assert "ens4" in first["message"] or spec[0]["macAddress"] in first["message"], first
    assert str(ens4["max_mtu"]) in first["message"], first
    assert state == "Failed"
    after = node.link_by_mac(spec[0]["macAddress"])
    assert (after["ifname"], after["mtu"]) == ("ens4", ens4["mtu"])
    assert node.ipv4("ens4") == []
    assert node.rules_from(spec[0]["address"]) == []
    assert second["state"] == "configured"
    assert_nic_configured(node, spec[1])
    assert not [p for p, (_, data) in daemon.files().items()
                if spec[0]["macAddress"].encode() in data and not p.startswith("var/")], \
        "a file was persisted for the failed NIC"


def test_mtu_below_68_is_refused_at_validation(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    spec[0]["mtu"] = 60
    before, files = node.snapshot(), daemon.files()

    error, message = daemon.apply_error(spec)

    assert error == "io.multinic.Agent1.Error.InvalidSpec"
    assert message.startswith("interfaces[0].mtu")
    assert node.snapshot() == before
    assert daemon.files() == files
