"""Field case 05: MACs in upper case match; other spellings are refused."""
import pytest

from conftest import assert_nic_configured, case01_spec

MAC = "fa:16:3e:00:00:01"


def spec_with_mac(mac):
    entry = dict(case01_spec()[0], macAddress=mac)
    return [entry]


def test_upper_case_mac_matches_and_is_stored_lower_case(node, daemon):
    node.nic("ens4", MAC)

    state, results = daemon.apply(spec_with_mac(MAC.upper()))

    assert state == "Configured"
    assert results[0]["macAddress"] == MAC
    assert_nic_configured(node, case01_spec()[0])
    files = daemon.files()
    assert any(MAC.encode() in data for _, data in files.values()), "MAC in no file"
    assert not [p for p, (_, data) in files.items() if MAC.upper().encode() in data]


@pytest.mark.parametrize("mac", ["fa-16-3e-00-00-01", "fa163e000001", "fa:16:3e:00:00",
                                 "fa:16:3e:00:00:0g"])
def test_malformed_mac_is_refused_naming_the_field(node, daemon, mac):
    node.nic("ens4", MAC)
    before, files = node.snapshot(), daemon.files()

    name, message = daemon.apply_error(spec_with_mac(mac))

    assert name == "io.multinic.Agent1.Error.InvalidSpec"
    assert message.startswith("interfaces[0].macAddress")
    assert node.snapshot() == before
    assert daemon.files() == files
