"""Which files the daemon writes, rewrites and deletes: only its own (marker first, or its
temporary files that a crash left), only when the managed state changed, never with persist off or
without a backend."""
import time

import pytest

from conftest import (DEBIAN_OS_RELEASE, NIC_SYSCTLS, add_case01_nics, assert_nic_configured,
                      by_mac, case01_spec, poll)
from persistence import (KEYFILE_DIR, MARKER, ROCKY_OS_RELEASE, STATE_FILE, SYSCTL_FILE,
                         UBUNTU_OS_RELEASE, etc_files, identities, keyfile_path, link_path,
                         netplan_path, netplan_root, parse_sysctl_file, rocky_root)

FOREIGN_KEYFILE = f"{KEYFILE_DIR}/multinic-foreign.nmconnection"  # matches the daemon's pattern
FOREIGN = {
    FOREIGN_KEYFILE: (b"[connection]\nid=foreign\ntype=ethernet\n", 0o600),
    f"{KEYFILE_DIR}/office.nmconnection": (f"{MARKER}\n[connection]\nid=office\n".encode(),
                                           0o600),
    "etc/systemd/network/10-multinic-foreign.link": (b"[Match]\nMACAddress=02:00:00:00:00:09\n",
                                                     0o644),
    "etc/sysctl.d/50-site.conf": (b"net/ipv4/ip_forward = 1\n", 0o644),
}
ORPHAN = keyfile_path("multinic7")  # the daemon's, for a NIC it no longer manages


def files_of(backend, names, sysctls=True):
    paths = set()
    for name in names:
        paths |= {netplan_path(name)} if backend == "netplan" else \
            {keyfile_path(name), link_path(name)}
    return paths | ({SYSCTL_FILE} if sysctls and names else set())


ROOTS = {"netplan": netplan_root, "networkmanager": rocky_root}


@pytest.mark.parametrize("backend", ROOTS)
def test_second_apply_and_restart_rewrite_no_file(node, start_daemon, backend):
    daemon = start_daemon(**ROOTS[backend]())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    assert set(etc_files(daemon.root)) == files_of(backend, ["multinic0", "multinic1"])
    written = identities(daemon.root)

    state, results = daemon.apply(spec)
    assert [r["state"] for r in results] == ["unchanged", "unchanged"]
    assert identities(daemon.root) == written
    # The first call after a start compares the files with the state: still nothing to write.
    daemon.restart()
    daemon.apply(spec)
    assert identities(daemon.root) == written


def test_file_deleted_by_hand_comes_back_at_the_first_apply_after_a_restart(node, start_daemon):
    daemon = start_daemon(**netplan_root())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    path = daemon.root / netplan_path("multinic1")
    content = path.read_bytes()
    path.unlink()

    daemon.restart()
    daemon.apply(spec)

    assert path.read_bytes() == content
    assert oct(path.stat().st_mode & 0o7777) == "0o600"


def test_dropped_nic_loses_its_files_and_only_its_files(node, start_daemon):
    daemon = start_daemon(**rocky_root(**FOREIGN, **{ORPHAN: (f"{MARKER}\n".encode(), 0o600)}))
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    assert not (daemon.root / ORPHAN).exists(), "a marked file of no managed NIC was kept"
    before = identities(daemon.root)

    state, results = daemon.apply(spec[:1])

    assert state == "Configured", results
    after = identities(daemon.root)
    gone = set(before) - set(after)
    changed = {rel for rel in after if after[rel] != before.get(rel) and rel.startswith("etc/")}
    assert gone == {keyfile_path("multinic1"), link_path("multinic1")}
    assert changed == {SYSCTL_FILE}
    assert set(parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())) == \
        {("multinic0", k) for k in NIC_SYSCTLS}
    for rel, (content, _) in FOREIGN.items():
        assert (daemon.root / rel).read_bytes() == content, rel


def test_remove_deletes_every_file_of_the_daemon_and_no_other(node, start_daemon):
    daemon = start_daemon(**rocky_root(**FOREIGN))
    add_case01_nics(node)
    daemon.apply(case01_spec())
    foreign = {rel: v for rel, v in identities(daemon.root).items() if rel in FOREIGN}
    (daemon.root / ORPHAN).write_text(f"{MARKER}\n")
    (daemon.root / ORPHAN).chmod(0o600)

    results = daemon.remove()

    assert [r["state"] for r in results] == ["removed", "removed"]
    # Marked or not, a file not named like the daemon's is not the daemon's.
    assert set(etc_files(daemon.root)) == set(FOREIGN)
    assert {rel: v for rel, v in identities(daemon.root).items() if rel in FOREIGN} == foreign


def failed_writes(daemon, path):
    return daemon.log().count(f"writing /{path} failed")


@pytest.mark.parametrize("when", ["apply", "late"])
def test_nic_whose_file_cannot_be_written_is_not_retried_by_its_own_rollback(node, start_daemon,
                                                                              when):
    """The rollback's own netlink events start a reconcile: it must not take the NIC over and
    fail the same way again, event after event, until a caller applies again."""
    path = netplan_path("multinic0")
    daemon = start_daemon(**netplan_root(**{path: (b"# the admin's own\n", 0o600)}))
    spec = case01_spec()
    if when == "late":
        node.nic("ens5", spec[1]["macAddress"])
        assert daemon.apply(spec)[0] == "Pending"
        node.nic("ens4", spec[0]["macAddress"])
        poll(lambda: failed_writes(daemon, path), timeout=10, what="the failed takeover")
    else:
        add_case01_nics(node)
        assert daemon.apply(spec)[0] == "Failed"

    time.sleep(1)  # a NIC retried on its own events fails again every 50 ms

    assert failed_writes(daemon, path) == 1, daemon.log()
    nic = by_mac(daemon.prop("Interfaces"))[spec[0]["macAddress"]]
    assert nic["state"] == "failed" and f"/{path}" in nic["message"]
    assert node.link_by_mac(spec[0]["macAddress"])["ifname"] == "ens4"
    assert_nic_configured(node, spec[1])


def test_unmarked_file_in_the_way_fails_its_nic_which_is_rolled_back(node, start_daemon):
    mine = b"# the admin's own\nnetwork:\n  version: 2\n"
    path = netplan_path("multinic0")
    daemon = start_daemon(**netplan_root(**{path: (mine, 0o600)}))
    add_case01_nics(node)
    before = {"links": {l["address"]: (l["ifname"], l["mtu"]) for l in node.links()},
              "ens4": node.ipv4("ens4"), "sysctls": node.sysctls("ens4")}
    identity = identities(daemon.root)[path]
    spec = case01_spec()

    state, results = daemon.apply(spec)

    assert state == "Failed", results
    failed, configured = (by_mac(results)[e["macAddress"]] for e in spec)
    assert failed["state"] == "failed"
    assert f"/{path}" in failed["message"], failed
    assert configured["state"] == "configured"
    assert identities(daemon.root)[path] == identity
    # multinic0 is back as it was; multinic1 is configured and persisted.
    link = node.link_by_mac(spec[0]["macAddress"])
    assert (link["ifname"], link["mtu"]) == before["links"][spec[0]["macAddress"]]
    assert node.ipv4("ens4") == before["ens4"] == []
    assert node.rules_from(spec[0]["address"]) == []
    assert node.routes(100) == []
    assert node.sysctls("ens4") == before["sysctls"]
    assert_nic_configured(node, spec[1])
    assert set(etc_files(daemon.root)) == {path} | files_of("netplan", ["multinic1"])
    assert set(parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())) == \
        {("multinic1", k) for k in NIC_SYSCTLS}

    # Once the admin moves the file away, the NIC is configured and persisted.
    (daemon.root / path).unlink()
    state, results = daemon.apply(spec)
    assert state == "Configured", results
    assert set(etc_files(daemon.root)) == files_of("netplan", ["multinic0", "multinic1"])


def test_persist_false_writes_and_deletes_nothing_until_persist_is_on_again(node, start_daemon):
    daemon = start_daemon(**rocky_root())
    add_case01_nics(node)
    spec = case01_spec()

    state, _ = daemon.apply(spec, {"persist": False})
    assert state == "Configured"
    assert etc_files(daemon.root) == {}

    daemon.apply(spec)
    written = identities(daemon.root)
    assert set(etc_files(daemon.root)) == files_of("networkmanager", ["multinic0", "multinic1"])

    # A change without persistence: the runtime follows, the files stay as they were.
    state, _ = daemon.apply(spec[:1], {"persist": False})
    assert state == "Configured"
    assert {rel: v for rel, v in identities(daemon.root).items() if rel.startswith("etc/")} == \
        {rel: v for rel, v in written.items() if rel.startswith("etc/")}
    # The next call with persistence brings the files to the state, even with nothing to change.
    state, results = daemon.apply(spec[:1])
    assert [r["state"] for r in results] == ["unchanged"]
    assert set(etc_files(daemon.root)) == files_of("networkmanager", ["multinic0"])


def test_persistence_none_writes_nothing(node, start_daemon):
    daemon = start_daemon("--persistence=none", **rocky_root())
    add_case01_nics(node)

    state, _ = daemon.apply(case01_spec())

    assert state == "Configured"
    assert daemon.prop("Persistence") == "none"
    assert etc_files(daemon.root) == {}
    daemon.remove()
    assert etc_files(daemon.root) == {}


NETPLAN_DIR = {"etc/netplan/": None}
BACKENDS = {
    "ubuntu-with-netplan": ((), UBUNTU_OS_RELEASE, NETPLAN_DIR, None, "netplan"),
    "ubuntu-without-netplan": ((), UBUNTU_OS_RELEASE, {}, None, "none"),
    "debian-with-netplan": ((), DEBIAN_OS_RELEASE, NETPLAN_DIR, None, "netplan"),
    "debian-without-netplan": ((), DEBIAN_OS_RELEASE, {}, None, "none"),
    "netplan-not-a-directory": ((), UBUNTU_OS_RELEASE, {"etc/netplan": b""}, None, "none"),
    "id-like-ubuntu": ((), 'ID=pop\nID_LIKE="ubuntu debian"\n', NETPLAN_DIR, None, "netplan"),
    "rocky": ((), ROCKY_OS_RELEASE, {}, None, "networkmanager"),
    "rocky-with-netplan-dir": ((), ROCKY_OS_RELEASE, NETPLAN_DIR, None, "networkmanager"),
    "almalinux": ((), 'ID="almalinux"\nID_LIKE="rhel centos fedora"\n', {}, None,
                  "networkmanager"),
    "id-like-rhel": ((), 'ID=acme\nID_LIKE="rhel fedora"\n', {}, None, "networkmanager"),
    "fedora": ((), "ID=fedora\n", {}, None, "networkmanager"),
    "oracle": ((), 'ID="ol"\nID_LIKE="fedora"\n', {}, None, "networkmanager"),
    "unknown": ((), "ID=arch\n", NETPLAN_DIR, None, "none"),
    "option-none-on-rocky": (("--persistence=none",), ROCKY_OS_RELEASE, {}, None, "none"),
    "option-netplan-on-rocky": (("--persistence=netplan",), ROCKY_OS_RELEASE, {}, None,
                                "netplan"),
    "option-networkmanager-on-ubuntu": (("--persistence=networkmanager",), UBUNTU_OS_RELEASE,
                                        NETPLAN_DIR, None, "networkmanager"),
    "option-auto-on-ubuntu": (("--persistence=auto",), UBUNTU_OS_RELEASE, NETPLAN_DIR, None,
                              "netplan"),
    "setting-on-debian": ((), DEBIAN_OS_RELEASE, {}, "Persistence=networkmanager\n",
                          "networkmanager"),
    "option-wins-over-setting": (("--persistence=netplan",), ROCKY_OS_RELEASE, {},
                                 "[Daemon]\nPersistence=none\n", "netplan"),
}


@pytest.mark.parametrize("args,os_release,files,config,backend", BACKENDS.values(),
                         ids=BACKENDS.keys())
def test_persistence_property_names_the_backend_that_writes(node, start_daemon, args, os_release,
                                                            files, config, backend):
    daemon = start_daemon(*args, os_release=os_release, files=files, config=config)
    node.nic("ens4", "fa:16:3e:00:00:01")

    assert daemon.prop("Persistence") == backend
    daemon.apply(case01_spec()[:1])
    written = set(etc_files(daemon.root)) - {"etc/netplan", "etc/multinic/multinicd.conf"}
    assert written == (files_of(backend, ["multinic0"]) if backend != "none" else set())


def test_nic_whose_runtime_change_fails_gets_no_files(node, start_daemon):
    daemon = start_daemon(**rocky_root())
    add_case01_nics(node)
    spec = case01_spec()
    spec[0]["mtu"] = 70000  # beyond the veth's maximum

    state, results = daemon.apply(spec)

    assert state == "Failed"
    assert [r["state"] for r in results] == ["failed", "configured"]
    assert set(etc_files(daemon.root)) == files_of("networkmanager", ["multinic1"])


def test_renamed_nic_moves_its_files(node, start_daemon):
    daemon = start_daemon(**netplan_root())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    spec[0]["name"] = "data0"

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert set(etc_files(daemon.root)) == files_of("netplan", ["data0", "multinic1"])
    assert "set-name: data0" in (daemon.root / netplan_path("data0")).read_text()
    assert {name for name, _ in parse_sysctl_file((daemon.root / SYSCTL_FILE).read_text())} == \
        {"data0", "multinic1"}


def test_nic_files_are_written_all_or_none(node, start_daemon):
    """The keyfile goes first; when the .link is blocked, the keyfile is put back as it was (no
    file for a new NIC, the previous one for a managed NIC, whose runtime change is undone)."""
    link = link_path("multinic0")
    admins = (b"[Match]\nOriginalName=*\n", 0o644)
    daemon = start_daemon(**rocky_root(**{link: admins}))
    add_case01_nics(node)
    spec = case01_spec()

    state, results = daemon.apply(spec)

    failed = by_mac(results)[spec[0]["macAddress"]]
    assert (state, failed["state"]) == ("Failed", "failed"), results
    assert f"/{link}" in failed["message"], failed
    assert node.link_by_mac(spec[0]["macAddress"])["ifname"] == "ens4"
    assert set(etc_files(daemon.root)) == {link} | files_of("networkmanager", ["multinic1"])

    # A managed NIC whose .link the admin takes over: its MTU change is refused as a whole.
    (daemon.root / link).unlink()
    daemon.apply(spec)
    keyfile = (daemon.root / keyfile_path("multinic0")).read_bytes()
    (daemon.root / link).write_bytes(admins[0])
    spec[0]["mtu"] = 1400

    state, results = daemon.apply(spec)

    failed = by_mac(results)[spec[0]["macAddress"]]
    assert (state, failed["state"]) == ("Failed", "failed"), results
    assert f"/{link}" in failed["message"], failed
    assert node.link("multinic0")["mtu"] == 1450
    assert (daemon.root / keyfile_path("multinic0")).read_bytes() == keyfile
    assert (daemon.root / link).read_bytes() == admins[0]


def test_sysctls_off_leave_no_sysctl_file(node, start_daemon):
    daemon = start_daemon("--sysctls=no", **rocky_root(**{SYSCTL_FILE: (f"{MARKER}\n", 0o644)}))
    add_case01_nics(node)

    daemon.apply(case01_spec())

    assert set(etc_files(daemon.root)) == \
        files_of("networkmanager", ["multinic0", "multinic1"], sysctls=False)


def test_backend_switch_leaves_only_the_new_backends_files(node, start_daemon):
    daemon = start_daemon(**netplan_root())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    assert set(etc_files(daemon.root)) == files_of("netplan", ["multinic0", "multinic1"])

    daemon.args.append("--persistence=networkmanager")
    daemon.restart()
    state, results = daemon.apply(spec)

    assert [r["state"] for r in results] == ["unchanged", "unchanged"]
    assert set(etc_files(daemon.root)) == files_of("networkmanager", ["multinic0", "multinic1"])


def test_nic_whose_port_is_detached_keeps_its_files(node, start_daemon):
    daemon = start_daemon(**rocky_root())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    written = identities(daemon.root)
    node.ip("link", "delete", "multinic1")

    state, results = daemon.apply(spec)

    assert state == "Pending", results
    assert [r["state"] for r in results] == ["unchanged", "pending"]
    assert {rel: v for rel, v in identities(daemon.root).items() if rel.startswith("etc/")} == \
        {rel: v for rel, v in written.items() if rel.startswith("etc/")}


# Temporary files of the daemon's atomic writes (".#<name>.<pid>") that a crash left, and files
# that only look alike, planted while it is stopped.
STALE_TEMPORARIES = [f"{KEYFILE_DIR}/.#multinic-multinic0.nmconnection.4242",
                     f"{KEYFILE_DIR}/.#multinic-multinic9.nmconnection.1",
                     "etc/systemd/network/.#10-multinic-multinic1.link.4242",
                     "etc/sysctl.d/.#90-multinic.conf.77",
                     f"{STATE_FILE.rsplit('/', 1)[0]}/.#state.json.4242"]
LOOKALIKES = {
    f"{KEYFILE_DIR}/.#office.nmconnection.4242": (b"[connection]\n", 0o600),  # not our name
    f"{KEYFILE_DIR}/.#multinic-multinic0.nmconnection": (b"", 0o600),  # no pid
    f"{KEYFILE_DIR}/.#multinic-multinic0.nmconnection.42x": (b"", 0o600),  # not a pid
    f"{KEYFILE_DIR}/.#90-multinic-multinic0.yaml.4242": (b"", 0o600),  # another directory's name
    f"{KEYFILE_DIR}/multinic-multinic0.nmconnection.4242": (b"", 0o600),  # not a dot file
    "etc/sysctl.d/.#50-site.conf.77": (b"net/ipv4/ip_forward = 1\n", 0o644),
}


def test_temporary_files_a_crash_left_are_removed_and_nothing_else(node, start_daemon):
    daemon = start_daemon(**rocky_root())
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    daemon.stop()
    for rel in STALE_TEMPORARIES:
        (daemon.root / rel).write_bytes(f"{MARKER}\n[conn".encode())  # cut off mid-write
    for rel, (content, mode) in LOOKALIKES.items():
        (daemon.root / rel).write_bytes(content)
        (daemon.root / rel).chmod(mode)
    before = identities(daemon.root)

    daemon.start()
    state, results = daemon.apply(spec)

    assert state == "Configured", results
    after = identities(daemon.root)
    assert set(before) - set(after) == set(STALE_TEMPORARIES)
    assert {rel: after[rel] for rel in LOOKALIKES} == {rel: before[rel] for rel in LOOKALIKES}
    assert set(etc_files(daemon.root)) == \
        files_of("networkmanager", ["multinic0", "multinic1"]) | set(LOOKALIKES)
