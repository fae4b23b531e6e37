"""Field case 03: a NIC that is already up gets renamed and configured."""
import re

from conftest import assert_nic_configured, fault_env

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


def test_kernel_refusing_to_rename_an_up_link_gets_down_rename_up(build, node, start_daemon):
    """Kernels before 6.4 answer EBUSY to renaming a running link; a preloaded shim plays that
    kernel here, whatever kernel runs the test."""
    daemon = start_daemon(env=fault_env(build, RENAME_EBUSY="1"))
    node.nic("ens4", "fa:16:3e:00:00:01", up=True)

    with node.monitor() as mon:
        state, results = daemon.apply(SPEC, {"allowUp": True})

    assert state == "Configured", results
    assert_nic_configured(node, SPEC[0])
    assert "fault: refusing to rename up link" in daemon.log()
    # The NIC went down for the rename and came back up; eth0 never moved.
    assert re.search(r"^\d+: ens4[:@].*state DOWN", mon.output, re.M), mon.output
    assert not re.search(r"^\d+: eth0[:@]", mon.output, re.M), "eth0 was touched:\n" + mon.output
