"""NetworkManager backend: a real NetworkManager loads the daemon's keyfiles as profiles that say
what the kernel holds at runtime, and udev's net_setup_link names the NIC from the .link file."""
import os

from conftest import (NIC_SYSCTLS, add_case01_nics, assert_nic_configured, case01_spec, run,
                      spec_name)
from persistence import (KEYFILE_DIR, LINK_DIR, MARKER, SYSCTL_FILE, etc_files, identities,
                         keyfile_path, link_path, net_setup_link, parse_sysctl_file, parse_unit,
                         rocky_root, scratch_namespace, sections)


def start_rocky(node, start_daemon):
    daemon = start_daemon(**rocky_root())
    add_case01_nics(node)
    return daemon


def keyfile_uuid(root, name):
    [connection] = sections(parse_unit((root / keyfile_path(name)).read_text()), "connection")
    return connection["uuid"]


def test_keyfiles_are_root_only_and_links_and_sysctls_world_readable(node, start_daemon):
    daemon = start_rocky(node, start_daemon)
    spec = case01_spec()

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert daemon.prop("Persistence") == "networkmanager"
    files = etc_files(daemon.root)
    modes = {rel: (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) for rel, st in files.items()}
    expected = {SYSCTL_FILE: ("0o644", 0, 0)}
    for entry in spec:
        expected[keyfile_path(spec_name(entry))] = ("0o600", 0, 0)
        expected[link_path(spec_name(entry))] = ("0o644", 0, 0)
    assert modes == expected
    for rel in files:
        assert (daemon.root / rel).read_text().split("\n", 1)[0] == MARKER, rel
    values = parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())
    assert values == {(spec_name(e), k): v for e in spec for k, v in NIC_SYSCTLS.items()}


def test_networkmanager_loads_each_profile_as_the_runtime_holds_it(node, start_daemon,
                                                                    network_manager):
    daemon = start_rocky(node, start_daemon)
    spec = case01_spec()
    state, results = daemon.apply(spec)
    assert state == "Configured", results

    nm = network_manager(node.ns, daemon.root / KEYFILE_DIR)

    profiles = nm.wait_profiles([f"multinic-{spec_name(e)}" for e in spec])
    for entry in spec:
        name = spec_name(entry)
        assert_nic_configured(node, entry)
        link = node.link(name)
        address = node.ipv4(name)[0]
        [rule] = node.rules_from(entry["address"])
        [route] = node.routes(rule["table"])
        assert route["scope"] == "link"
        assert profiles[f"multinic-{name}"] == keyfile_uuid(daemon.root, name)

        p = nm.show(f"multinic-{name}")

        assert p["connection.type"] == "802-3-ethernet"
        assert p["connection.interface-name"] == name
        assert p["802-3-ethernet.mac-address"].lower() == link["address"]
        assert p["802-3-ethernet.mtu"] == str(link["mtu"])
        assert p["ipv4.method"] == "manual"
        assert p["ipv4.addresses"] == f"{address['local']}/{address['prefixlen']}"
        assert p["ipv4.never-default"] == "yes"
        assert p["ipv4.route-table"] == rule["table"]
        assert p["ipv4.routes"] == \
            f"{route['dst']} scope=253 src={route['prefsrc']} table={rule['table']}"
        assert p["ipv4.routing-rules"] == \
            f"priority {rule['priority']} from {rule['src']} table {rule['table']}"
        assert p["ipv6.method"] == "disabled"


def test_networkmanager_ignores_a_keyfile_readable_by_others(node, start_daemon, network_manager):
    daemon = start_rocky(node, start_daemon)
    daemon.apply(case01_spec())
    nm = network_manager(node.ns, daemon.root / KEYFILE_DIR)
    nm.wait_profiles(["multinic-multinic0", "multinic-multinic1"])
    loosened = daemon.root / keyfile_path("multinic1")

    os.chmod(loosened, 0o644)
    nm.reload()

    assert set(nm.profiles()) == {"multinic-multinic0"}
    assert f'"{loosened}": failed to load connection: File permissions (100644) are insecure' \
        in nm.log()


def test_keyfile_uuid_follows_the_mac(node, start_daemon):
    daemon = start_rocky(node, start_daemon)
    spec = case01_spec()
    daemon.apply(spec)
    first = {spec_name(e): keyfile_uuid(daemon.root, spec_name(e)) for e in spec}

    daemon.remove()
    assert not (daemon.root / keyfile_path("multinic0")).exists()
    daemon.restart()
    daemon.apply(spec)

    assert {spec_name(e): keyfile_uuid(daemon.root, spec_name(e)) for e in spec} == first
    assert len(set(first.values())) == len(spec)


def test_link_file_names_the_nic_by_mac_at_the_next_boot_and_no_bridge_or_macvlan(
        node, start_daemon):
    """The guard is the NIC's driver (Driver=veth here, as ethtool names it), which systemd's
    .link matching has understood since before v239 (RHEL 8): Type=ether, which only v245 and later
    match with a NIC, also let a macvlan with the NIC's MAC take its name."""
    daemon = start_rocky(node, start_daemon)
    spec = case01_spec()
    state, results = daemon.apply(spec)
    assert state == "Configured", results
    link_dir = daemon.root / LINK_DIR
    for entry in spec:
        unit = parse_unit((link_dir / f"10-multinic-{spec_name(entry)}.link").read_text())
        [match], [link_section] = sections(unit, "Match"), sections(unit, "Link")
        assert match == {"MACAddress": entry["macAddress"], "Driver": "veth"}
        assert link_section["MTUBytes"] == str(node.link(spec_name(entry))["mtu"])
    # The next boot: the same NICs under their kernel names, and a bridge and a macvlan that took
    # one's MAC (VLANs and bonds cannot be made on the test kernel).
    boot = scratch_namespace(node, "b")
    for kernel_name, entry in zip(("ens4", "ens5"), spec):
        run("ip", "-n", boot, "link", "add", kernel_name, "address", entry["macAddress"],
            "type", "veth", "peer", "name", f"{kernel_name}p")
    run("ip", "-n", boot, "link", "add", "br0", "address", spec[0]["macAddress"], "type",
        "bridge")
    run("ip", "-n", boot, "link", "add", "mv0", "link", "ens5p", "address",
        spec[0]["macAddress"], "type", "macvlan")

    for kernel_name, entry in zip(("ens4", "ens5"), spec):
        props = net_setup_link(boot, link_dir, kernel_name)
        assert props.get("ID_NET_LINK_FILE") == \
            f"/etc/systemd/network/10-multinic-{spec_name(entry)}.link", props["log"]
        assert props.get("ID_NET_NAME") == spec_name(entry), props["log"]
    for stacked in ("br0", "mv0"):
        props = net_setup_link(boot, link_dir, stacked)
        assert not props.get("ID_NET_LINK_FILE", "").startswith("/etc/systemd/network/"), \
            (stacked, props["log"])
        assert props.get("ID_NET_NAME") != spec_name(spec[0]), (stacked, props["log"])
    # A NIC whose MAC no file names keeps the default policy.
    other = net_setup_link(boot, link_dir, "ens4p")
    assert other.get("ID_NET_LINK_FILE", "").startswith("/usr/lib/systemd/network/"), \
        other["log"]


def test_link_file_of_a_detached_nic_keeps_its_driver_guard(node, start_daemon):
    """While a NIC's port is detached its driver cannot be read; the files are still brought to
    the state at the first call after a start, and its .link keeps its guard."""
    daemon = start_rocky(node, start_daemon)
    spec = case01_spec()
    daemon.apply(spec)
    written = identities(daemon.root)[link_path("multinic1")]
    node.ip("link", "delete", "multinic1")

    daemon.restart()
    state, results = daemon.apply(spec)

    assert state == "Pending", results
    assert identities(daemon.root)[link_path("multinic1")] == written
