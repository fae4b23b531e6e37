"""Release when the NIC's original name has been taken by another link meanwhile: the NIC keeps its
multinic name, the result says so, and everything else is released and goes on as usual."""
from conftest import (add_case01_nics, assert_nic_configured, assert_nic_released, by_mac,
                      case01_spec)
from persistence import SYSCTL_FILE, nic_files, parse_sysctl_file, start_backend

INTRUDER_MAC = "fa:16:3e:00:00:09"


def take_ens4(node):
    """A link called ens4 that is not the NIC (which is multinic0 now)."""
    node.nic("ens4", INTRUDER_MAC)
    node.wait_settled()
    return node.link("ens4")


def assert_intruder_untouched(node, before):
    after = node.link("ens4")
    assert after is not None, "the link called ens4 was renamed"
    assert (after["ifindex"], after["address"], after["flags"], after["mtu"]) == \
        (before["ifindex"], before["address"], before["flags"], before["mtu"])
    assert node.ipv4("ens4") == []


def test_dropped_nic_keeps_its_multinic_name_when_the_original_is_taken(node, start_daemon):
    daemon = start_backend(start_daemon, "netplan")
    add_case01_nics(node)
    spec = case01_spec()
    assert daemon.apply(spec)[0] == "Configured"
    assert set(nic_files("netplan", "multinic0")) <= set(daemon.files())
    intruder = take_ens4(node)

    state, results = daemon.apply(spec[1:])

    assert state == "Configured", results
    released = by_mac(results)[spec[0]["macAddress"]]
    assert released["state"] == "removed", released
    assert released["name"] == "multinic0", released
    assert "keeps the name multinic0" in released["message"], released
    assert "ens4 is taken" in released["message"], released
    assert not [c for c in released["changes"] if c.startswith("rename")], released
    # Released in every other respect, under the name it keeps.
    assert_nic_released(node, spec[0]["macAddress"], "multinic0", spec[0])
    assert node.sysctls("multinic0") == {"arp_ignore": 0, "arp_announce": 0, "rp_filter": 0}
    files = daemon.files()
    assert not set(nic_files("netplan", "multinic0")) & set(files), sorted(files)
    assert "multinic0" not in {ifname for ifname, _ in
                               parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())}
    # Nothing else breaks: the intruder, the other NIC and the daemon's view.
    assert_intruder_untouched(node, intruder)
    assert by_mac(results)[spec[1]["macAddress"]]["state"] == "unchanged"
    assert_nic_configured(node, spec[1])
    assert [i["macAddress"] for i in daemon.prop("Interfaces")] == [spec[1]["macAddress"]]
    assert daemon.apply(spec[1:])[1][0]["state"] == "unchanged"

    # The NIC, still called multinic0, is not in use: applying it again configures it.
    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert [r["state"] for r in results] == ["configured", "unchanged"], results
    for entry in spec:
        assert_nic_configured(node, entry)
    assert_intruder_untouched(node, intruder)


def test_remove_with_the_original_name_taken_releases_both_nics(node, start_daemon):
    daemon = start_backend(start_daemon, "netplan")
    add_case01_nics(node)
    spec = case01_spec()
    assert daemon.apply(spec)[0] == "Configured"
    intruder = take_ens4(node)

    results = by_mac(daemon.remove())

    first, second = (results[e["macAddress"]] for e in spec)
    assert (first["state"], first["name"]) == ("removed", "multinic0"), first
    assert "keeps the name multinic0 since ens4 is taken" in first["message"], first
    assert (second["state"], second["name"], second["message"]) == \
        ("removed", "ens5", "released"), second
    assert_nic_released(node, spec[0]["macAddress"], "multinic0", spec[0])
    assert_nic_released(node, spec[1]["macAddress"], "ens5", spec[1])
    assert_intruder_untouched(node, intruder)
    assert daemon.prop("Interfaces") == []
    files = daemon.files()
    assert not [p for p in files if p.startswith("etc/")], sorted(files)
    assert daemon.remove() == []
    assert daemon.alive()
