"""Field case 02: a host with strict reverse-path filtering in 'all'."""
from conftest import add_case01_nics, case01_spec


def make_strict(node):
    node.write_sysctl("all/rp_filter", 1)
    node.write_sysctl("eth0/rp_filter", 1)


def test_strict_host_keeps_all_and_eth0_and_nics_get_loose_rp_filter(node, daemon):
    add_case01_nics(node)
    make_strict(node)
    spec = case01_spec()

    state, _ = daemon.apply(spec)

    assert state == "Configured"
    for entry in spec:
        assert node.sysctls(entry["name"], ("rp_filter",)) == {"rp_filter": 2}
    assert node.sysctls("all", ("rp_filter",)) == {"rp_filter": 1}
    assert node.sysctls("eth0", ("rp_filter",)) == {"rp_filter": 1}


def test_client_reaches_both_addresses_despite_strict_all(node, daemon):
    add_case01_nics(node)
    make_strict(node)
    spec = case01_spec()
    daemon.apply(spec)
    client = node.client("10.1.0.50/24", [e["macAddress"] for e in spec])

    for entry in spec:
        assert client.ping(entry["address"]), f"{entry['address']} does not answer"
    neighbours = client.neighbours()
    assert [neighbours.get(e["address"]) for e in spec] == [e["macAddress"] for e in spec]
