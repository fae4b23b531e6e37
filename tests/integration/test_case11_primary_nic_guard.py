"""Field case 11: the NIC that holds the default route is never touched."""
import re

import pytest

from conftest import PRIMARY_MAC, assert_nic_configured

SPEC = [{"id": 0, "macAddress": PRIMARY_MAC, "address": "10.1.0.11", "cidr": "10.1.0.0/24",
         "mtu": 1450}]


def default_routes(node):
    return [(r["gateway"], r["dev"]) for r in node.routes("main") if r["dst"] == "default"]


@pytest.mark.parametrize("options", [{}, {"allowUp": True}], ids=["plain", "allowUp"])
def test_primary_nic_is_refused_even_with_allow_up(node, daemon, options):
    node.nic("ens4", "fa:16:3e:00:00:01")
    before, files = node.snapshot(), daemon.files()

    error, message = daemon.apply_error(SPEC, options)

    assert error == "io.multinic.Agent1.Error.InterfaceInUse"
    assert message.startswith("interfaces[0].macAddress: ")
    assert "is eth0, the primary NIC" in message, message
    assert default_routes(node) == [("10.0.0.1", "eth0")]
    assert node.snapshot() == before
    assert daemon.files() == files


def test_persisted_files_never_add_a_default_route(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = dict(SPEC[0], macAddress="fa:16:3e:00:00:01")

    daemon.apply([entry])

    assert_nic_configured(node, entry)
    assert default_routes(node) == [("10.0.0.1", "eth0")]
    for path, (_, data) in daemon.files().items():
        text = data.decode(errors="replace")
        assert not re.search(r"0\.0\.0\.0/0|to:\s*default|gateway4|^gateway=", text, re.M), path
        assert not re.search(r"dhcp4:\s*(true|yes)", text), path
        if path.endswith(".nmconnection"):
            assert "never-default=true" in text, path


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
