"""The harness itself: private bus, namespaces, ip monitor, client traffic; no daemon needed."""
import subprocess

import dbus

import mnbus
from conftest import Bus, node_context, run


def test_bus_accepts_root_and_nobody(bus):
    assert bus.conn.name_has_owner("org.freedesktop.DBus")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "/usr/bin/python3", "-c",
                        "import dbus, sys; c = dbus.bus.BusConnection(sys.argv[1]);"
                        "print(c.get_unix_user(c.get_unique_name()))", bus.address],
                       capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "65534"


def test_bus_policy_lets_only_root_own_the_agent_name():
    b = Bus()
    try:
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "/usr/bin/python3", "-c",
                            "import dbus, sys; c = dbus.bus.BusConnection(sys.argv[1]);"
                            "c.request_name(sys.argv[2])", b.address, mnbus.BUS_NAME],
                           capture_output=True, text=True, cwd="/")
        assert "org.freedesktop.DBus.Error.AccessDenied" in p.stderr
        assert b.conn.request_name(mnbus.BUS_NAME) == dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER
    finally:
        b.close()
    assert b.proc.returncode is not None
    assert not b.dir.exists()


def test_node_has_the_baseline_and_is_removed():
    with node_context() as node:
        names = [node.ns, node.fabric]
        listed = run("ip", "netns", "list")
        assert all(n in listed for n in names)
        eth0 = node.link("eth0")
        assert eth0["address"] == "fa:16:3e:00:00:00" and "UP" in eth0["flags"]
        assert node.ipv4_strings("eth0") == ["10.0.0.10/24"]
        assert [(r["dst"], r["gateway"]) for r in node.routes() if r["dst"] == "default"] == \
            [("default", "10.0.0.1")]
    listed = run("ip", "netns", "list")
    assert not any(n in listed.split() for n in names)


def test_node_is_removed_when_the_block_fails():
    names = []
    try:
        with node_context() as node:
            names = [node.ns, node.fabric]
            node.client("10.1.0.50/24", [])
            names.append(node.namespaces[-1])
            raise RuntimeError("test failure")
    except RuntimeError:
        pass
    listed = run("ip", "netns", "list").split()
    assert names and not set(names) & set(listed)


def test_monitor_sees_a_change_and_nothing_else(node):
    node.nic("ens4", "fa:16:3e:00:00:01")
    with node.monitor() as quiet:
        pass
    assert quiet.output == ""
    with node.monitor() as mon:
        node.ip("link", "set", "ens4", "mtu", "1400")
    assert "ens4" in mon.output and "mtu 1400" in mon.output


def test_client_pings_a_manually_configured_nic(node):
    node.nic("ens4", "fa:16:3e:00:00:01", up=True)
    node.ip("addr", "add", "10.1.0.11/24", "dev", "ens4")
    client = node.client("10.1.0.50/24", ["fa:16:3e:00:00:01"])
    assert client.ping("10.1.0.11")
    assert client.neighbours()["10.1.0.11"] == "fa:16:3e:00:00:01"
    assert not client.ping("10.1.0.99", timeout=0.3)
