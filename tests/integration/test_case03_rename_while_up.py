"""Field case 03: a NIC that is already up gets renamed and configured."""
import re

from conftest import assert_nic_configured

SPEC = [{"id": 0, "macAddress": "fa:16:3e:00:00:01", "address": "10.1.0.11",
         "cidr": "10.1.0.0/24", "mtu": 1450}]


def test_up_nic_is_renamed_and_configured_with_allow_up(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01", up=True)

    with node.monitor() as mon:
        state, results = daemon.apply(SPEC, {"allowUp": True})

    assert state == "Configured", results
    assert results[0]["name"] == "multinic0"
    assert_nic_configured(node, SPEC[0])
    assert node.link("ens4") is None
    assert not re.search(r"^\d+: eth0[:@]", mon.output, re.M), "eth0 was touched:\n" + mon.output
    assert "UP" in node.link("eth0")["flags"]
