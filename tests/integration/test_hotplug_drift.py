"""NICs that appear later or go away, and state changed behind multinicd's back: the daemon
keeps the host matching the last spec without being asked, and says so."""
import re
import subprocess
import threading
import time

import pytest

from conftest import (NIC_SYSCTLS, TABLE_BASE, assert_nic_configured, by_mac, case01_spec,
                      poll)


def configured(node, entry):
    try:
        assert_nic_configured(node, entry)
        return True
    except AssertionError:
        return False


def test_late_nic_is_configured_when_it_appears(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()
    state, results = daemon.apply(spec)
    assert state == "Pending"
    assert by_mac(results)[spec[1]["macAddress"]]["state"] == "pending"

    node.nic("ens5", "fa:16:3e:00:00:02")

    poll(lambda: configured(node, spec[1]), timeout=5, what="the late NIC configured")
    assert_nic_configured(node, spec[0])
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")
    assert {i["macAddress"]: i["state"] for i in daemon.prop("Interfaces")} == \
        {e["macAddress"]: "configured" for e in spec}


def test_detached_nic_becomes_pending_then_comes_back(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")
    spec = case01_spec()
    daemon.apply(spec)

    node.ip("link", "del", "multinic1")

    poll(lambda: daemon.prop("State") == "Pending", timeout=5, what="State Pending")
    poll(lambda: node.rules_from(spec[1]["address"]) == [], timeout=5, what="its rule gone")
    assert by_mac(daemon.prop("Interfaces"))[spec[1]["macAddress"]]["state"] == "pending"
    assert_nic_configured(node, spec[0])

    node.nic("ens5", "fa:16:3e:00:00:02")
    poll(lambda: configured(node, spec[1]), timeout=5, what="the NIC configured again")
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")


DRIFT = {
    "mtu": ["link", "set", "multinic0", "mtu", "1400"],
    "address-removed": ["addr", "del", "10.1.0.11/24", "dev", "multinic0"],
    "rule-removed": ["rule", "del", "from", "10.1.0.11", "lookup", str(TABLE_BASE)],
    "table-route-removed": ["route", "del", "10.1.0.0/24", "dev", "multinic0", "table",
                            str(TABLE_BASE)],
    "link-down": ["link", "set", "multinic0", "down"],
    "renamed": ["link", "set", "multinic0", "name", "eth7"],
}


@pytest.mark.parametrize("change", DRIFT.values(), ids=DRIFT.keys())
def test_drift_is_healed(node, daemon, change):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])

    node.ip(*change)

    poll(lambda: configured(node, entry), timeout=5, what="the drift healed")
    assert "Changed behind multinicd's back; healed" in daemon.log()


def test_rp_filter_drift_is_healed_from_its_netconf_event(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])

    node.write_sysctl("multinic0/rp_filter", "0")

    poll(lambda: node.sysctls("multinic0") == NIC_SYSCTLS, timeout=5, what="rp_filter healed")


def test_arp_sysctl_drift_is_healed_at_the_periodic_check(node, start_daemon):
    daemon = start_daemon("--check-interval=1")
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])

    # No event tells of arp_ignore; the periodic check finds it.
    node.write_sysctl("multinic0/arp_ignore", "0")

    poll(lambda: node.sysctls("multinic0") == NIC_SYSCTLS, timeout=5, what="arp_ignore healed")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def test_competitor_leads_to_degraded_with_bounded_cpu(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])
    stop = threading.Event()

    def competitor():
        while not stop.is_set():
            subprocess.run(["ip", "-n", node.ns, "rule", "del", "from", entry["address"],
                            "lookup", str(TABLE_BASE)], capture_output=True)
            time.sleep(0.1)

    thread = threading.Thread(target=competitor)
    cpu0, t0 = cpu_seconds(daemon.proc.pid), time.monotonic()
    thread.start()
    try:
        nic = poll(lambda: next((i for i in daemon.prop("Interfaces")
                                 if "degraded" in i["message"]), None),
                   timeout=10, what="the NIC reported degraded")
        time.sleep(3)  # the competitor goes on; multinicd must stay calm
    finally:
        stop.set()
        thread.join()
    cpu = (cpu_seconds(daemon.proc.pid) - cpu0) / (time.monotonic() - t0)

    assert nic["state"] == "failed"
    assert re.search(r"changed back \d+ times within a minute", nic["message"])
    assert "degraded" in daemon.prop("LastError")
    assert cpu < 0.25, f"multinicd used {cpu:.0%} of a CPU while fighting"
