"""netplan backend: the daemon's YAML is private, marked, read back as written, and `netplan
generate` turns it into systemd-networkd files that say what the kernel holds at runtime."""
import os
import subprocess

import yaml

from conftest import (NIC_SYSCTLS, add_case01_nics, assert_nic_configured, case01_spec,
                      spec_name)
from persistence import (MARKER, SYSCTL_FILE, etc_files, netplan_path, netplan_root,
                         parse_sysctl_file, parse_unit, sections)

# YAML 1.1 reads this MAC, unquoted, as the base-60 integer 8041827059.
SEXAGESIMAL_MAC = "10:20:30:40:50:59"
CLOUD_INIT = b"""# This file is generated from information provided by the datasource.
network:
    ethernets:
        eth0:
            dhcp4: true
            match:
                macaddress: fa:16:3e:00:00:00
            set-name: eth0
    version: 2
"""
CLOUD_INIT_PATH = "etc/netplan/50-cloud-init.yaml"


def three_nic_spec():
    return case01_spec() + [{"id": 2, "name": "multinic2", "macAddress": SEXAGESIMAL_MAC,
                             "address": "10.1.0.13", "cidr": "10.1.0.0/24", "mtu": 1450}]


def expected_yaml(entry):
    name, address, table = spec_name(entry), entry["address"], 100 + entry["id"]
    return {"network": {"version": 2, "ethernets": {name: {
        "match": {"macaddress": entry["macAddress"]},
        "set-name": name,
        "mtu": entry["mtu"],
        "dhcp4": False,
        "dhcp6": False,
        "addresses": [f"{address}/24"],
        "routes": [{"to": entry["cidr"], "from": address, "scope": "link", "table": table}],
        "routing-policy": [{"from": address, "table": table, "priority": 1000 + entry["id"]}],
    }}}}


def start_ubuntu(node, start_daemon):
    daemon = start_daemon(**netplan_root(**{CLOUD_INIT_PATH: (CLOUD_INIT, 0o600)}))
    cloud_init = daemon.root / CLOUD_INIT_PATH
    os.utime(cloud_init, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    add_case01_nics(node)
    node.nic("ens6", SEXAGESIMAL_MAC)
    return daemon


def test_the_test_mac_is_a_number_to_yaml_unless_quoted():
    assert yaml.safe_load(f"m: {SEXAGESIMAL_MAC}")["m"] == 8041827059


def test_netplan_files_are_private_marked_and_hold_the_spec(node, start_daemon):
    daemon = start_ubuntu(node, start_daemon)
    spec = three_nic_spec()

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert daemon.prop("Persistence") == "netplan"
    files = etc_files(daemon.root)
    assert set(files) == {CLOUD_INIT_PATH, SYSCTL_FILE} | {netplan_path(spec_name(e))
                                                           for e in spec}
    for entry in spec:
        path = daemon.root / netplan_path(spec_name(entry))
        st = files[netplan_path(spec_name(entry))]
        assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o600", 0, 0), path
        text = path.read_text()
        assert text.split("\n", 1)[0] == MARKER
        doc = yaml.safe_load(text)
        assert doc == expected_yaml(entry)
        mac = doc["network"]["ethernets"][spec_name(entry)]["match"]["macaddress"]
        assert isinstance(mac, str) and mac == entry["macAddress"]


def test_sysctl_file_holds_the_runtime_values_and_sysctl_loads_it(node, start_daemon):
    daemon = start_ubuntu(node, start_daemon)
    spec = three_nic_spec()
    daemon.apply(spec)
    path = daemon.root / SYSCTL_FILE

    assert oct(path.stat().st_mode & 0o7777) == "0o644"
    text = path.read_text()
    assert text.split("\n", 1)[0] == MARKER
    values = parse_sysctl_file(text)
    assert values == {(spec_name(e), k): node.sysctls(spec_name(e))[k]
                      for e in spec for k in NIC_SYSCTLS}

    # What a boot does with it: sysctl(8) loads it (here in the node's own namespace).
    for entry in spec:
        for key in NIC_SYSCTLS:
            node.write_sysctl(f"{spec_name(entry)}/{key}", 0)
    node.run("sysctl", "-q", "-p", path)
    for entry in spec:
        assert node.sysctls(spec_name(entry)) == NIC_SYSCTLS


def test_netplan_generate_gives_networkd_the_runtime_configuration(node, start_daemon):
    daemon = start_ubuntu(node, start_daemon)
    cloud_init = daemon.root / CLOUD_INIT_PATH
    before = cloud_init.stat()
    spec = three_nic_spec()
    state, results = daemon.apply(spec)
    assert state == "Configured", results

    p = subprocess.run(["netplan", "generate", "--root-dir", daemon.root],
                       capture_output=True, text=True, timeout=60)

    assert p.returncode == 0, p.stderr
    out = daemon.root / "run/systemd/network"
    for entry in spec:
        name = spec_name(entry)
        assert_nic_configured(node, entry)
        link = node.link(name)
        address = node.ipv4(name)[0]
        [rule] = node.rules_from(entry["address"])
        [route] = node.routes(rule["table"])

        network = parse_unit((out / f"10-netplan-{name}.network").read_text())
        [match] = sections(network, "Match")
        assert match["Name"] == name
        assert (match.get("MACAddress") or match.get("PermanentMACAddress")) == link["address"]
        assert [s.get("MTUBytes") for s in sections(network, "Link")] == [str(link["mtu"])]
        assert [s["Address"] for s in sections(network, "Network")] == \
            [f"{address['local']}/{address['prefixlen']}"]
        assert [(s["Destination"], s["PreferredSource"], s["Scope"], s["Table"])
                for s in sections(network, "Route")] == \
            [(route["dst"], route["prefsrc"], route["scope"], rule["table"])]
        assert [(s["From"], s["Table"], s["Priority"])
                for s in sections(network, "RoutingPolicyRule")] == \
            [(rule["src"], rule["table"], str(rule["priority"]))]

        link_file = parse_unit((out / f"10-netplan-{name}.link").read_text())
        [link_section] = sections(link_file, "Link")
        assert link_section["Name"] == name
        assert link_section["MTUBytes"] == str(link["mtu"])

    # The foreign file is read by netplan, and left as it was by the daemon.
    assert (out / "10-netplan-eth0.network").exists()
    assert cloud_init.read_bytes() == CLOUD_INIT
    after = cloud_init.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns, after.st_mode) == \
        (before.st_ino, before.st_mtime_ns, before.st_ctime_ns, before.st_mode)
    assert after.st_mtime_ns == 1_600_000_000_000_000_000
