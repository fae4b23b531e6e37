"""Field case 01: two NICs in one subnet each answer for their own address."""
from conftest import PRIORITY_BASE, add_case01_nics, assert_nic_configured, case01_spec


def test_same_subnet_pair_gets_rules_tables_and_sysctls(node, daemon):
    add_case01_nics(node)
    untouched = {n: node.sysctls(n) for n in ("eth0", "all", "default")}
    spec = case01_spec()

    state, results = daemon.apply(spec)

    assert state == "Configured"
    assert [r["state"] for r in results] == ["configured", "configured"]
    for entry in spec:
        assert_nic_configured(node, entry)
    priorities = [r["priority"] for e in spec for r in node.rules_from(e["address"])]
    assert priorities == [PRIORITY_BASE + e["id"] for e in spec]
    assert all(0 < p < 32766 for p in priorities), "rule would lose to the main table"
    assert {n: node.sysctls(n) for n in untouched} == untouched


def test_main_table_has_no_competing_subnet_route(node, daemon):
    add_case01_nics(node)
    main_before = node.routes("main")

    daemon.apply(case01_spec())

    assert node.routes("main") == main_before


def test_client_reaches_each_address_on_its_own_nic(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    client = node.client("10.1.0.50/24", [e["macAddress"] for e in spec])

    for entry in spec:
        assert client.ping(entry["address"]), f"{entry['address']} does not answer"

    neighbours = client.neighbours()
    assert {e["address"]: neighbours.get(e["address"]) for e in spec} == \
        {e["address"]: e["macAddress"] for e in spec}
