"""Release gives each NIC back the per-NIC sysctls (arp_ignore, arp_announce, rp_filter) it had
before Apply, not the kernel defaults: by Remove, by leaving the spec, and across a restart."""
import pytest

from conftest import NIC_SYSCTLS, add_case01_nics, assert_nic_configured, case01_spec

# Values that are neither the kernel defaults (0) nor what multinicd sets.
ORIGINAL = {"ens4": {"arp_ignore": 2, "arp_announce": 1, "rp_filter": 1},
            "ens5": {"arp_ignore": 0, "arp_announce": 1, "rp_filter": 0}}


def set_originals(node):
    add_case01_nics(node)
    for ifname, values in ORIGINAL.items():
        for key, value in values.items():
            node.write_sysctl(f"{ifname}/{key}", value)
        assert node.sysctls(ifname) == values


def test_remove_restores_the_sysctls_of_before_apply(node, daemon):
    set_originals(node)
    spec = case01_spec()
    assert daemon.apply(spec)[0] == "Configured"
    for entry in spec:
        assert_nic_configured(node, entry)  # NIC_SYSCTLS in force meanwhile

    results = daemon.remove()

    assert [r["name"] for r in sorted(results, key=lambda r: r["id"])] == ["ens4", "ens5"]
    for ifname, values in ORIGINAL.items():
        assert node.sysctls(ifname) == values, ifname


def test_leaving_the_spec_restores_that_nics_sysctls_only(node, daemon):
    set_originals(node)
    spec = case01_spec()
    daemon.apply(spec)

    state, results = daemon.apply(spec[1:])

    assert state == "Configured", results
    assert node.sysctls("ens4") == ORIGINAL["ens4"]
    assert node.sysctls("multinic1") == NIC_SYSCTLS


def test_sysctls_of_before_apply_survive_a_restart(node, daemon):
    """The originals are in the state file: a restarted daemon restores them too."""
    set_originals(node)
    spec = case01_spec()
    daemon.apply(spec)
    daemon.restart()

    daemon.remove()

    for ifname, values in ORIGINAL.items():
        assert node.sysctls(ifname) == values, ifname


@pytest.mark.parametrize("key", sorted(NIC_SYSCTLS))
def test_a_sysctl_changed_by_hand_while_managed_still_restores_the_original(node, daemon, key):
    """What counts is the value before Apply, not one seen while the NIC was managed."""
    set_originals(node)
    spec = case01_spec()[:1]
    daemon.apply(spec)
    node.write_sysctl(f"multinic0/{key}", 3 if key == "arp_ignore" else 0)
    daemon.apply(spec)  # heals it (or leaves it: either way the release below must restore)

    daemon.remove()

    assert node.sysctls("ens4") == ORIGINAL["ens4"]
