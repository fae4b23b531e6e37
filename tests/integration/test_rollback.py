"""A NIC whose change fails mid-way ends exactly as it was, together with any NIC it swapped
names with; the kernel's refusal comes from the preloaded fault shim."""
from conftest import (add_case01_nics, assert_nic_configured, by_mac, case01_spec, fault_env)


def test_swap_partner_is_rolled_back_with_the_nic_that_failed(build, node, start_daemon):
    daemon = start_daemon(env=fault_env(build, ADDR_ADD="10.1.0.22"))
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    swapped = [dict(spec[0], name="multinic1"), dict(spec[1], name="multinic0", address="10.1.0.22")]

    state, results = daemon.apply(swapped)

    assert state == "Failed"
    assert by_mac(results)[spec[1]["macAddress"]]["state"] == "failed"
    assert "add address 10.1.0.22/24" in by_mac(results)[spec[1]["macAddress"]]["message"]
    assert by_mac(results)[spec[0]["macAddress"]]["state"] == "failed"
    assert "rolled back together with" in by_mac(results)[spec[0]["macAddress"]]["message"]
    for entry in spec:
        assert_nic_configured(node, entry)
    assert daemon.plan(spec) == []


def test_rollback_puts_back_a_route_someone_else_added_exactly(build, node, start_daemon):
    daemon = start_daemon(env=fault_env(build, ADDR_ADD="10.1.0.21"))
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])
    node.ip("route", "add", "10.50.0.0/16", "via", "10.1.0.1", "dev", "multinic0", "onlink",
            "src", entry["address"], "metric", "100")
    before = node.ip_json("route", "show", "table", "all")

    state, results = daemon.apply([dict(entry, address="10.1.0.21")])

    assert state == "Failed"
    assert "rolled back" in results[0]["message"]
    assert "undoing" not in results[0]["message"], results[0]["message"]
    assert node.ip_json("route", "show", "table", "all") == before
    assert_nic_configured(node, entry)
