"""NICs that appear later or go away, and state changed behind multinicd's back: the daemon
keeps the host matching the last spec without being asked, and says so."""
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (NIC_SYSCTLS, TABLE_BASE, assert_nic_configured, by_mac, case01_spec,
                      nic_configured, poll)
from persistence import BACKEND_ROOTS, identities, nic_files, start_backend


def test_late_nic_is_configured_when_it_appears(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()
    state, results = daemon.apply(spec)
    assert state == "Pending"
    assert by_mac(results)[spec[1]["macAddress"]]["state"] == "pending"

    node.nic("ens5", "fa:16:3e:00:00:02")

    poll(lambda: nic_configured(node, spec[1]), timeout=5, what="the late NIC configured")
    assert_nic_configured(node, spec[0])
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")
    assert {i["macAddress"]: i["state"] for i in daemon.prop("Interfaces")} == \
        {e["macAddress"]: "configured" for e in spec}


def etc_identities(root):
    """What a rewrite of a file under <root>/etc would change (the state file changes anyway)."""
    return {k: v for k, v in identities(root).items() if k.startswith("etc/")}


@pytest.mark.parametrize("backend", BACKEND_ROOTS)
def test_detached_nic_becomes_pending_then_comes_back(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")
    spec = case01_spec()
    daemon.apply(spec)
    files = etc_identities(daemon.root)
    assert set(nic_files(backend, "multinic1")) <= set(files)

    node.ip("link", "del", "multinic1")

    poll(lambda: daemon.prop("State") == "Pending", timeout=5, what="State Pending")
    poll(lambda: node.rules_from(spec[1]["address"]) == [], timeout=5, what="its rule gone")
    assert node.routes(TABLE_BASE + spec[1]["id"]) == []
    assert by_mac(daemon.prop("Interfaces"))[spec[1]["macAddress"]]["state"] == "pending"
    assert_nic_configured(node, spec[0])
    # It may come back: its files stay, untouched.
    assert etc_identities(daemon.root) == files

    node.nic("ens5", "fa:16:3e:00:00:02")
    poll(lambda: nic_configured(node, spec[1]), timeout=5, what="the NIC configured again")
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")
    assert etc_identities(daemon.root) == files


# change made behind multinicd's back: (ip arguments, the drift record it must report: field,
# and a part of what is wanted and of what was found)
DRIFT = {
    "mtu": (["link", "set", "multinic0", "mtu", "1400"], ("mtu", "1450", "1400")),
    "address-removed": (["addr", "del", "10.1.0.11/24", "dev", "multinic0"],
                        ("address", "10.1.0.11/24", "absent")),
    "rule-removed": (["rule", "del", "from", "10.1.0.11", "lookup", str(TABLE_BASE)],
                     ("rule", f"from 10.1.0.11 lookup {TABLE_BASE}", "absent")),
    "table-route-removed": (["route", "del", "10.1.0.0/24", "dev", "multinic0", "table",
                             str(TABLE_BASE)],
                            ("route", f"10.1.0.0/24 src 10.1.0.11 table {TABLE_BASE}", "absent")),
    "link-down": (["link", "set", "multinic0", "down"], ("link", "up", "down")),
    "renamed": (["link", "set", "multinic0", "name", "eth7"], ("name", "multinic0", "eth7")),
}


def drift_of(daemon, mac):
    return by_mac(daemon.prop("Interfaces"))[mac].get("drift", [])


@pytest.mark.parametrize("change,record", DRIFT.values(), ids=DRIFT.keys())
def test_drift_is_healed_and_reported(node, daemon, change, record):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])
    assert drift_of(daemon, entry["macAddress"]) == []

    node.ip(*change)

    poll(lambda: nic_configured(node, entry), timeout=5, what="the drift healed")
    field, wanted, found = record
    drift = poll(lambda: drift_of(daemon, entry["macAddress"]), timeout=5, what="drift reported")
    assert any(d["field"] == field and wanted in d["wanted"] and found in d["found"]
               for d in drift), drift
    nic = by_mac(daemon.prop("Interfaces"))[entry["macAddress"]]
    assert nic["state"] == "configured" and nic["driftedAt"] > 0
    assert re.search(rf"{field} changed behind multinicd's back: .*{re.escape(found)}.*, wanted "
                     rf".*{re.escape(wanted)}.*; healed", daemon.log())


def test_a_late_or_returning_nic_is_not_drift(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()
    daemon.apply(spec)

    # A port that comes and goes more often than a competitor would be fought: still not drift.
    for _ in range(6):
        node.nic("ens5", "fa:16:3e:00:00:02")
        poll(lambda: nic_configured(node, spec[1]), timeout=5, what="the NIC configured")
        poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")
        node.ip("link", "del", "multinic1")
        poll(lambda: daemon.prop("State") == "Pending", timeout=5, what="State Pending")
    node.nic("ens5", "fa:16:3e:00:00:02")
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")

    assert all("drift" not in i and i["state"] == "configured"
               for i in daemon.prop("Interfaces")), daemon.prop("Interfaces")
    assert "changed behind multinicd's back" not in daemon.log()


def assert_sysctl_drift_reported(daemon, mac, field, wanted, found):
    drift = poll(lambda: drift_of(daemon, mac), timeout=5, what="drift reported")
    assert drift == [{"field": field, "wanted": wanted, "found": found}], drift
    nic = by_mac(daemon.prop("Interfaces"))[mac]
    assert nic["state"] == "configured" and nic["driftedAt"] > 0
    assert f"{field} changed behind multinicd's back: {found}, wanted {wanted}; healed" in \
        daemon.log()


def test_rp_filter_drift_is_healed_from_its_netconf_event(node, start_daemon):
    # The periodic check is an hour away: only the netconf event tells.
    daemon = start_daemon("--check-interval=3600")
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])

    node.write_sysctl("multinic0/rp_filter", "0")

    poll(lambda: node.sysctls("multinic0") == NIC_SYSCTLS, timeout=5, what="rp_filter healed")
    assert_sysctl_drift_reported(daemon, entry["macAddress"], "rp_filter", "2", "0")


def test_arp_sysctl_drift_is_healed_at_the_periodic_check(node, start_daemon):
    daemon = start_daemon("--check-interval=1")
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])

    # No event tells of arp_ignore; the periodic check finds it.
    node.write_sysctl("multinic0/arp_ignore", "0")

    poll(lambda: node.sysctls("multinic0") == NIC_SYSCTLS, timeout=5, what="arp_ignore healed")
    assert_sysctl_drift_reported(daemon, entry["macAddress"], "arp_ignore", "1", "0")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def heals(daemon, entry):
    """What multinicd logged of healing entry's NIC: drift found, and its rule put back."""
    log = daemon.log()
    return (log.count("changed behind multinicd's back"),
            log.count(f"add rule from {entry['address']} "))


def test_competitor_leads_to_degraded_with_bounded_cpu(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens9", "fa:16:3e:00:00:09")  # the competitor's own link
    entry = case01_spec()[0]
    daemon.apply([entry])
    pid = daemon.proc.pid
    stop = threading.Event()

    def competitor():
        # It deletes the rule every 100 ms and flaps a link of its own, so that multinicd still
        # gets events once the rule it no longer puts back stays deleted.
        up = False
        while not stop.is_set():
            subprocess.run(["ip", "-n", node.ns, "rule", "del", "from", entry["address"],
                            "lookup", str(TABLE_BASE)], capture_output=True)
            up = not up
            node.ip("link", "set", "ens9", "up" if up else "down")
            time.sleep(0.1)

    thread = threading.Thread(target=competitor)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    thread.start()
    try:
        # Polled slowly: each property read costs multinicd some CPU too.
        nic = poll(lambda: next((i for i in daemon.prop("Interfaces")
                                 if "degraded" in i["message"]), None),
                   timeout=20, interval=0.1, what="the NIC reported degraded")
        fight = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        told = heals(daemon, entry)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        time.sleep(3)  # the competitor goes on; multinicd must leave the NIC alone
        after = (cpu_seconds(pid) - cpu1) / (time.monotonic() - t1)
    finally:
        stop.set()
        thread.join()

    assert nic["state"] == "failed"
    assert re.search(r"changed back \d+ times within a minute", nic["message"])
    assert "degraded" in daemon.prop("LastError")
    # A guard against a loop, not a speed test: the fight takes a few reconciles.
    assert fight < 0.25, f"multinicd used {fight:.0%} of a CPU while fought"
    assert heals(daemon, entry) == told, daemon.log()
    assert node.rules_from(entry["address"]) == []
    assert after < 0.25, f"multinicd used {after:.0%} of a CPU once it stopped fighting"


def test_a_fought_nic_is_left_alone_and_the_others_still_healed(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")
    spec = case01_spec()
    daemon.apply(spec)
    rule = ["rule", "del", "from", spec[0]["address"], "lookup", str(TABLE_BASE)]

    # Five heals of multinic0 within a minute: the sixth deletion is left as it is.
    for _ in range(5):
        node.ip(*rule)
        poll(lambda: node.rules_from(spec[0]["address"]) != [], timeout=5, what="rule healed")
    poll(lambda: "degraded" in by_mac(daemon.prop("Interfaces"))[spec[0]["macAddress"]]["message"],
         timeout=5, what="multinic0 reported degraded")
    node.ip(*rule)
    node.ip("link", "set", "multinic1", "mtu", "1400")

    poll(lambda: nic_configured(node, spec[1]), timeout=5, what="multinic1 healed")
    assert node.rules_from(spec[0]["address"]) == []
    nics = by_mac(daemon.prop("Interfaces"))
    assert nics[spec[0]["macAddress"]]["state"] == "failed"
    assert "not healing for 30 s" in nics[spec[0]["macAddress"]]["message"]
    assert nics[spec[1]["macAddress"]]["state"] == "configured"
    assert {"field": "mtu", "wanted": "1450", "found": "1400"} in nics[spec[1]["macAddress"]]["drift"]


def test_after_its_pause_a_degraded_nic_is_judged_afresh(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]
    daemon.apply([entry])
    rule = ["rule", "del", "from", entry["address"], "lookup", str(TABLE_BASE)]
    for _ in range(5):
        node.ip(*rule)
        poll(lambda: node.rules_from(entry["address"]) != [], timeout=5, what="rule healed")
    poll(lambda: "degraded" in by_mac(daemon.prop("Interfaces"))[entry["macAddress"]]["message"],
         timeout=5, what="the NIC reported degraded")
    drifted_at = by_mac(daemon.prop("Interfaces"))[entry["macAddress"]]["driftedAt"]
    told = daemon.log().count("changed behind multinicd's back")

    time.sleep(31)  # the first pause is 30 s
    # Detached and attached again after the pause: that is no drift.
    node.ip("link", "del", "multinic0")
    poll(lambda: daemon.prop("State") == "Pending", timeout=5, what="State Pending")
    node.nic("ens4", "fa:16:3e:00:00:01")
    poll(lambda: nic_configured(node, entry), timeout=5, what="the NIC configured again")
    poll(lambda: daemon.prop("State") == "Configured", timeout=5, what="State Configured")

    nic = by_mac(daemon.prop("Interfaces"))[entry["macAddress"]]
    assert nic["state"] == "configured" and nic["driftedAt"] == drifted_at, nic
    assert daemon.log().count("changed behind multinicd's back") == told
