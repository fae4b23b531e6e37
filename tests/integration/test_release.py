"""Declarative release: what leaves the spec, or Remove, leaves the host as it was."""
import pytest

from conftest import (TABLE_BASE, add_case01_nics, assert_nic_configured, assert_nic_released,
                      by_mac, case01_spec, spec_name)
from persistence import (STATE_FILE, SYSCTL_FILE, etc_files, nic_files, parse_sysctl_file,
                         start_backend)

BACKENDS = ["netplan", "networkmanager"]


def sysctl_file_nics(root):
    return {ifname for ifname, _ in parse_sysctl_file((root / SYSCTL_FILE).read_text())}


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropped_entry_is_released_and_gets_its_name_back(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    files = set(daemon.files())
    for entry in spec:  # not vacuous: both NICs' files are there
        assert set(nic_files(backend, spec_name(entry))) <= files, sorted(files)
    assert sysctl_file_nics(daemon.root) == {"multinic0", "multinic1"}

    state, results = daemon.apply(spec[:1])

    assert state == "Configured"
    assert by_mac(results)[spec[1]["macAddress"]]["state"] == "removed"
    assert by_mac(results)[spec[0]["macAddress"]]["state"] == "unchanged"
    assert_nic_released(node, spec[1]["macAddress"], "ens5", spec[1])
    assert_nic_configured(node, spec[0])
    assert [i["macAddress"] for i in daemon.prop("Interfaces")] == [spec[0]["macAddress"]]
    files = set(daemon.files())
    assert not set(nic_files(backend, "multinic1")) & files, sorted(files)
    assert set(nic_files(backend, "multinic0")) <= files, sorted(files)
    assert sysctl_file_nics(daemon.root) == {"multinic0"}
    assert spec[1]["macAddress"].encode() not in (daemon.root / STATE_FILE).read_bytes()


def test_address_change_removes_the_old_address_and_its_rule(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    old = spec[0]["address"]
    spec[0]["address"] = "10.1.0.21"

    state, results = daemon.apply(spec)

    assert state == "Configured"
    assert [r["state"] for r in results] == ["configured", "unchanged"]
    assert_nic_configured(node, spec[0])
    assert node.rules_from(old) == []
    assert not [r for r in node.routes(TABLE_BASE + spec[0]["id"]) if r.get("prefsrc") == old]


def test_cidr_change_moves_the_table_route(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()[:1]
    daemon.apply(spec)
    spec[0].update(address="10.2.0.11", cidr="10.2.0.0/16")

    daemon.apply(spec)

    assert_nic_configured(node, spec[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_remove_releases_everything(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
    add_case01_nics(node)
    spec = case01_spec()
    rules, routes = node.rules(), node.ip_json("route", "show", "table", "all")
    etc = {p: f for p, f in daemon.files().items() if p.startswith("etc/")}
    daemon.apply(spec)
    written = set(etc_files(daemon.root)) - set(etc)  # not vacuous: Apply wrote the NICs' files
    assert written == {SYSCTL_FILE, *(p for e in spec for p in nic_files(backend, spec_name(e)))}

    results = daemon.remove()

    assert sorted((r["macAddress"], r["state"]) for r in results) == \
        sorted((e["macAddress"], "removed") for e in spec)
    for entry, original in zip(spec, ("ens4", "ens5")):
        assert_nic_released(node, entry["macAddress"], original, entry)
    assert node.rules() == rules
    assert node.ip_json("route", "show", "table", "all") == routes
    assert daemon.prop("Interfaces") == []
    assert {p: f for p, f in daemon.files().items() if p.startswith("etc/")} == etc
    assert not [e["macAddress"] for e in spec
                if e["macAddress"].encode() in (daemon.root / STATE_FILE).read_bytes()]
    assert daemon.remove() == []
