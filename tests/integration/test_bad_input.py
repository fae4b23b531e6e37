"""Bad input of every kind is refused with InvalidSpec naming the field, and changes nothing."""
import os
import re
import subprocess

import dbus
import pytest

from conftest import add_case01_nics, case01_spec, daemon_context, node_context

MISSING = object()
LONG = "x" * 10240


def entry(**fields):
    """Case 01's first entry with fields changed; MISSING drops a field."""
    e = dict(case01_spec()[0])
    for key, value in fields.items():
        if value is MISSING:
            del e[key]
        else:
            e[key] = value
    return [e]


def second(**fields):
    return [case01_spec()[0], dict(case01_spec()[1], **fields)]


def many(n):
    return [{"id": i, "macAddress": f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}",
             "address": f"10.128.{i // 200}.{i % 200 + 1}", "cidr": "10.128.0.0/16"}
            for i in range(n)]


# name: (interfaces, options, field path the message starts with)
BAD = {
    "id-as-string": (entry(id=dbus.String("0")), {}, "interfaces[0].id"),
    "id-as-int32": (entry(id=dbus.Int32(0)), {}, "interfaces[0].id"),
    "id-as-uint64": (entry(id=dbus.UInt64(0)), {}, "interfaces[0].id"),
    "id-overflowing-table": (entry(id=2**32 - 1), {}, "interfaces[0].id"),
    "id-missing": (entry(id=MISSING), {}, "interfaces[0].id"),
    "id-on-a-reserved-table": (entry(id=154), {}, "interfaces[0].id"),
    "mtu-as-int32": (entry(mtu=dbus.Int32(1450)), {}, "interfaces[0].mtu"),
    "mtu-as-string": (entry(mtu="1450"), {}, "interfaces[0].mtu"),
    "mtu-zero": (entry(mtu=0), {}, "interfaces[0].mtu"),
    "mtu-67": (entry(mtu=67), {}, "interfaces[0].mtu"),
    "name-as-boolean": (entry(name=True), {}, "interfaces[0].name"),
    "name-empty": (entry(name=""), {}, "interfaces[0].name"),
    "name-with-space": (entry(name="multi nic"), {}, "interfaces[0].name"),
    "name-dot": (entry(name="."), {}, "interfaces[0].name"),
    "name-dotdot": (entry(name=".."), {}, "interfaces[0].name"),
    "name-template": (entry(name="multinic%d"), {}, "interfaces[0].name"),
    "name-non-ascii": (entry(name="multinic\u00e9"), {}, "interfaces[0].name"),
    "name-10k": (entry(name=LONG), {}, "interfaces[0].name"),
    "mac-as-bytes": (entry(macAddress=dbus.Array([dbus.Byte(b) for b in b"\xfa\x16\x3e\0\0\1"],
                                                 signature="y")), {}, "interfaces[0].macAddress"),
    "mac-empty": (entry(macAddress=""), {}, "interfaces[0].macAddress"),
    "mac-seven-octets": (entry(macAddress="fa:16:3e:00:00:01:02"), {}, "interfaces[0].macAddress"),
    "mac-leading-space": (entry(macAddress=" fa:16:3e:00:00:01"), {}, "interfaces[0].macAddress"),
    "mac-dots": (entry(macAddress="fa16.3e00.0001"), {}, "interfaces[0].macAddress"),
    "mac-10k": (entry(macAddress=LONG), {}, "interfaces[0].macAddress"),
    "mac-missing": (entry(macAddress=MISSING), {}, "interfaces[0].macAddress"),
    "address-as-uint32": (entry(address=dbus.UInt32(0x0A01000B)), {}, "interfaces[0].address"),
    "address-with-prefix": (entry(address="10.1.0.11/24"), {}, "interfaces[0].address"),
    "address-ipv6": (entry(address="fd00::11"), {}, "interfaces[0].address"),
    "address-three-parts": (entry(address="10.1.11"), {}, "interfaces[0].address"),
    "address-octal-looking": (entry(address="010.001.000.011"), {}, "interfaces[0].address"),
    "address-trailing-newline": (entry(address="10.1.0.11\n"), {}, "interfaces[0].address"),
    "address-10k": (entry(address=LONG), {}, "interfaces[0].address"),
    "address-missing": (entry(address=MISSING), {}, "interfaces[0].address"),
    "cidr-without-prefix": (entry(cidr="10.1.0.0"), {}, "interfaces[0].cidr"),
    "cidr-prefix-33": (entry(cidr="10.1.0.0/33"), {}, "interfaces[0].cidr"),
    "cidr-default-route": (entry(cidr="0.0.0.0/0"), {}, "interfaces[0].cidr"),
    "cidr-prefix-garbage": (entry(cidr="10.1.0.0/2x"), {}, "interfaces[0].cidr"),
    "cidr-prefix-leading-zero": (entry(cidr="10.1.0.0/024"), {}, "interfaces[0].cidr"),
    "cidr-prefix-zero-padded": (entry(cidr="10.1.0.0/08"), {}, "interfaces[0].cidr"),
    "cidr-ipv6": (entry(cidr="fd00::/64"), {}, "interfaces[0].cidr"),
    "cidr-host-bits": (entry(cidr="10.1.0.5/24"), {}, "interfaces[0].cidr"),
    "cidr-as-uint32": (entry(cidr=dbus.UInt32(24)), {}, "interfaces[0].cidr"),
    "cidr-missing": (entry(cidr=MISSING), {}, "interfaces[0].cidr"),
    "address-outside-cidr": (entry(address="10.2.0.11"), {}, "interfaces[0].address"),
    "address-is-broadcast": (entry(address="10.1.0.255"), {}, "interfaces[0].address"),
    "unknown-key": (entry(gateway="10.1.0.1"), {}, "interfaces[0].gateway"),
    "empty-entry": ([{}], {}, "interfaces[0]"),
    "second-entry-bad-cidr": (second(cidr="10.1.0.0/99"), {}, "interfaces[1].cidr"),
    "duplicate-mac-other-case": (second(macAddress="FA:16:3E:00:00:01"), {},
                                 "interfaces[1].macAddress"),
    "duplicate-id": (second(id=0), {}, "interfaces[1].id"),
    "duplicate-name": (second(name="multinic0"), {}, "interfaces[1].name"),
    "duplicate-default-name": ([dict(case01_spec()[0], name="multinic1"),
                                {k: v for k, v in case01_spec()[1].items() if k != "name"}], {},
                               "interfaces[1].name"),
    "duplicate-address": (second(address="10.1.0.11"), {}, "interfaces[1].address"),
    "300-entries": (many(300), {}, "interfaces"),
    "unknown-option": (entry(), {"dryRun": True}, "options.dryRun"),
    "allowUp-as-string": (entry(), {"allowUp": "true"}, "options.allowUp"),
    "policyRouting-as-uint32": (entry(), {"policyRouting": dbus.UInt32(1)},
                                "options.policyRouting"),
    "persist-as-int32": (entry(), {"persist": dbus.Int32(0)}, "options.persist"),
    "instanceId-as-uint32": (entry(), {"instanceId": dbus.UInt32(1)}, "options.instanceId"),
    "instanceId-not-a-uuid": (entry(), {"instanceId": "node-1; rm -rf /"}, "options.instanceId"),
    "instanceId-10k": (entry(), {"instanceId": LONG}, "options.instanceId"),
}


@pytest.fixture(scope="module")
def env(build, bus, tmp_path_factory):
    """One node and daemon for the whole table: each case must leave both as they were."""
    with node_context() as node:
        add_case01_nics(node)
        root = tmp_path_factory.mktemp("bad-input") / "root"
        with daemon_context(None, build, node, bus, root) as daemon:
            yield node, daemon


@pytest.fixture
def daemon(env):
    return env[1]


@pytest.mark.parametrize("interfaces,options,field", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_naming_the_field(env, daemon, interfaces, options, field):
    node = env[0]
    before, files = node.snapshot(), daemon.files()

    for call in (daemon.plan_error, daemon.apply_error):
        name, message = call(interfaces, options)
        assert name == "io.multinic.Agent1.Error.InvalidSpec", message
        assert message.startswith(field), message
    # A refused Apply is logged with its caller, as every Apply is.
    calls = [l for l in daemon.log().splitlines() if " called by uid " in l]
    assert calls and re.match(rf"multinicd: Apply called by uid 0 pid {os.getpid()}, "
                              rf"authorization \S+: (invalid: )?{re.escape(field)}",
                              calls[-1]), calls[-1:]

    assert node.snapshot() == before
    assert daemon.files() == files
    assert daemon.alive() and daemon.prop("Version")


def test_wrong_signature_is_refused_and_the_daemon_survives(env, daemon):
    node = env[0]
    before = node.snapshot()
    apply = daemon.client.proxy.get_dbus_method("Apply", "io.multinic.Agent1")

    with pytest.raises(dbus.exceptions.DBusException) as info:
        apply("fa:16:3e:00:00:01", dbus.Dictionary({}, signature="sv"), signature="sa{sv}")

    assert info.value.get_dbus_name() == "org.freedesktop.DBus.Error.InvalidArgs"
    assert node.snapshot() == before
    assert daemon.alive() and daemon.prop("Version")



def test_key_given_twice_in_one_entry_is_refused(env, daemon):
    """dbus-python dicts cannot repeat a key; busctl sends the message as written."""
    node = env[0]
    before = node.snapshot()
    p = subprocess.run(["busctl", f"--address={daemon.bus.address}", "call", "io.multinic.Agent1",
                        "/io/multinic/Agent1", "io.multinic.Agent1", "Apply", "aa{sv}a{sv}", "1",
                        "6", "id", "u", "0", "macAddress", "s", "fa:16:3e:00:00:01", "address", "s",
                        "10.1.0.11", "cidr", "s", "10.1.0.0/24", "address", "s", "10.1.0.99",
                        "mtu", "u", "1450", "0"], capture_output=True, text=True)

    assert p.returncode != 0
    assert "interfaces[0].address: given more than once" in p.stderr
    assert node.snapshot() == before
