"""A MAC that is not present yet is pending; the rest is configured."""
from conftest import add_case01_nics, assert_nic_configured, by_mac, case01_spec


def test_absent_mac_is_pending_and_the_rest_configured(node, daemon):
    add_case01_nics(node)
    spec = case01_spec() + [{"id": 2, "macAddress": "fa:16:3e:00:00:99", "address": "10.1.0.13",
                             "cidr": "10.1.0.0/24"}]

    state, results = daemon.apply(spec)

    assert state == "Pending"
    states = {mac: r["state"] for mac, r in by_mac(results).items()}
    assert states == {spec[0]["macAddress"]: "configured", spec[1]["macAddress"]: "configured",
                      spec[2]["macAddress"]: "pending"}
    for entry in spec[:2]:
        assert_nic_configured(node, entry)
    assert node.rules_from(spec[2]["address"]) == []
    assert daemon.prop("State") == "Pending"
