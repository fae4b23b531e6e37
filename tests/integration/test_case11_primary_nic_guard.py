"""Field case 11: the NIC that holds the default route is never touched."""
import re

import pytest

from conftest import PRIMARY_MAC, assert_nic_configured
from persistence import STATE_FILE, nic_files, start_backend

SPEC = [{"id": 0, "macAddress": PRIMARY_MAC, "address": "10.1.0.11", "cidr": "10.1.0.0/24",
         "mtu": 1450}]
OTHER = {"id": 1, "macAddress": "fa:16:3e:00:00:01", "address": "10.1.0.12", "cidr": "10.1.0.0/24",
         "mtu": 1450}


def default_routes(node):
    return [(r["gateway"], r["dev"]) for r in node.routes("main") if r["dst"] == "default"]


@pytest.mark.parametrize("options", [{}, {"allowUp": True}], ids=["plain", "allowUp"])
def test_primary_nic_is_refused_even_with_allow_up(node, start_daemon, options):
    """On a netplan root that already holds another NIC's files: nothing changes and nothing is
    written for the primary NIC."""
    daemon = start_backend(start_daemon, "netplan")
    node.nic("ens4", OTHER["macAddress"])
    assert daemon.apply([OTHER])[0] == "Configured"
    before, files = node.snapshot(), daemon.files()
    assert set(files) >= {STATE_FILE, *nic_files("netplan", "multinic1")}, sorted(files)

    error, message = daemon.apply_error(SPEC + [OTHER], options)

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert message.startswith("interfaces[0].macAddress: ")
    assert "is eth0, the primary NIC" in message, message
    assert default_routes(node) == [("10.0.0.1", "eth0")]
    assert node.snapshot() == before
    assert daemon.files() == files
    for path, (_, data) in daemon.files().items():
        assert PRIMARY_MAC.encode() not in data.lower() and b"eth0" not in data, path


@pytest.mark.parametrize("backend", ["netplan", "networkmanager"])
def test_persisted_files_never_add_a_default_route(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = dict(SPEC[0], macAddress="fa:16:3e:00:00:01")

    daemon.apply([entry])

    assert_nic_configured(node, entry)
    assert default_routes(node) == [("10.0.0.1", "eth0")]
    files = daemon.files()
    assert set(nic_files(backend, "multinic0")) <= set(files), sorted(files)
    for path, (_, data) in files.items():
        text = data.decode(errors="replace")
        assert not re.search(r"0\.0\.0\.0/0|to:\s*default|gateway4|^gateway=", text, re.M), path
        assert not re.search(r"dhcp4:\s*(true|yes)", text), path
        if path.endswith(".nmconnection"):
            assert "never-default=true" in text, path
        if path.endswith(".yaml"):
            assert re.search(r"^\s*dhcp4: false$", text, re.M), path


def test_primary_nic_is_found_by_its_default_route_not_its_name(node, daemon):
    """The NIC holding the default route is refused whatever it is called."""
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.ip("addr", "add", "10.9.0.10/24", "dev", "ens4")
    node.ip("link", "set", "ens4", "up")
    node.ip("route", "replace", "default", "via", "10.9.0.1", "dev", "ens4")  # eth0 loses it
    entry = dict(SPEC[0], macAddress="fa:16:3e:00:00:01")
    before = node.snapshot()

    error, message = daemon.apply_error([entry], {"allowUp": True})

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert "is ens4, the primary NIC" in message, message
    assert node.snapshot() == before
