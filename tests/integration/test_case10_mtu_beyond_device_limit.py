"""Field case 10: an MTU beyond what the device allows fails that NIC only."""
import pytest

from conftest import add_case01_nics, assert_nic_configured, case01_spec
from persistence import SYSCTL_FILE, etc_files, nic_files, parse_sysctl_file, start_backend


@pytest.mark.parametrize("backend", ["netplan", "networkmanager"])
def test_mtu_above_device_maximum_fails_that_nic_only(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
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
    # Nothing persisted for the failed NIC: only the second NIC's files, and its sysctls alone.
    assert set(etc_files(daemon.root)) == set(nic_files(backend, "multinic1")) | {SYSCTL_FILE}
    assert {nic for nic, _ in parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())} == \
        {"multinic1"}
    assert not [p for p, (_, data) in daemon.files().items()
                if spec[0]["macAddress"].encode() in data and not p.startswith("var/")]


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
