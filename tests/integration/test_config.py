"""Table base, rule priority base, policy routing and sysctls are configurable."""
import os
import subprocess

from conftest import NIC_SYSCTLS, assert_nic_configured, case01_spec, make_root


def test_custom_table_and_priority_bases_are_used(node, start_daemon):
    daemon = start_daemon("--table-base", "200", "--priority-base=5000")
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")
    spec = case01_spec()

    state, _ = daemon.apply(spec)

    assert state == "Configured"
    for entry in spec:
        assert_nic_configured(node, entry, table_base=200, priority_base=5000)


def assert_plain_address(node, entry):
    """The address with its kernel prefix route in main, and no rule or table route."""
    name = entry["name"]
    assert node.ipv4_strings(name) == [f"{entry['address']}/24"]
    assert not node.ipv4(name)[0].get("noprefixroute")
    assert [r["dev"] for r in node.routes("main") if r["dst"] == entry["cidr"]] == [name]
    assert node.rules_from(entry["address"]) == []


def test_policy_routing_option_off_gives_plain_addresses(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()[:1]

    state, _ = daemon.apply(spec, {"policyRouting": False})

    assert state == "Configured"
    assert_plain_address(node, spec[0])


def test_policy_routing_switched_off_by_the_daemon_overrides_the_option(node, start_daemon):
    daemon = start_daemon("--policy-routing=no")
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = case01_spec()[:1]

    state, _ = daemon.apply(spec, {"policyRouting": True})

    assert state == "Configured"
    assert_plain_address(node, spec[0])


def test_sysctls_switched_off_are_left_alone(node, start_daemon):
    daemon = start_daemon("--sysctls=no")
    node.nic("ens4", "fa:16:3e:00:00:01")
    before = node.sysctls("ens4")
    assert before != NIC_SYSCTLS
    spec = case01_spec()[:1]

    daemon.apply(spec)

    assert node.sysctls("multinic0") == before
    assert node.rules_from(spec[0]["address"]) != []


def test_settings_file_under_root_is_read_and_the_command_line_wins(node, start_daemon):
    daemon = start_daemon("--priority-base=7000",
                          config="# site settings\n[Daemon]\nTableBase=300\nRulePriorityBase=6000\n")
    node.nic("ens4", "fa:16:3e:00:00:01")
    entry = case01_spec()[0]

    daemon.apply([entry])

    assert_nic_configured(node, entry, table_base=300, priority_base=7000)


def test_invalid_setting_stops_the_daemon_naming_it(build, node, bus, tmp_path):
    root = make_root(tmp_path / "root", config="TableBase=many\n")
    p = subprocess.run(["ip", "netns", "exec", node.ns, build / "daemon" / "multinicd",
                        "--root", root, "--log-target=console"],
                       capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address))

    assert p.returncode != 0
    assert "multinicd.conf:1: invalid setting TableBase" in p.stderr


def test_too_many_settings_on_the_command_line_are_refused_not_overflowed(build, node, bus,
                                                                          tmp_path):
    root = make_root(tmp_path / "root")
    p = subprocess.run(["ip", "netns", "exec", node.ns, build / "daemon" / "multinicd",
                        "--root", root, "--log-target=console", *["--sysctls=yes"] * 17],
                       capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address))

    assert p.returncode == 1
    assert "Too many settings given" in p.stderr
    assert "Sanitizer" not in p.stderr


def test_unknown_setting_in_the_file_is_named(build, node, bus, tmp_path):
    root = make_root(tmp_path / "root", config="TableBase=200\nTablebase=300\n")
    p = subprocess.run(["ip", "netns", "exec", node.ns, build / "daemon" / "multinicd",
                        "--root", root, "--log-target=console"],
                       capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address))

    assert p.returncode == 1
    assert "multinicd.conf:2: unknown setting Tablebase" in p.stderr
