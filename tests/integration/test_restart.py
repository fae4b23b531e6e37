"""Managed state outlives the daemon process."""
import os
import signal
import subprocess

import dbus
import pytest

from conftest import (add_case01_nics, assert_nic_configured, assert_nic_released, case01_spec,
                      fault_env, poll)


def test_restarted_daemon_knows_what_it_manages(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)

    daemon.restart()

    assert sorted(i["macAddress"] for i in daemon.prop("Interfaces")) == \
        sorted(e["macAddress"] for e in spec)
    state, results = daemon.apply(spec)
    assert state == "Configured"
    assert [r["state"] for r in results] == ["unchanged"] * len(spec)


def test_remove_after_restart_still_releases(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)

    daemon.restart()
    results = daemon.remove()

    assert sorted(r["state"] for r in results) == ["removed"] * len(spec)
    for entry, original in zip(spec, ("ens4", "ens5")):
        assert_nic_released(node, entry["macAddress"], original, entry)


def test_restart_does_not_touch_the_configured_nics(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    before = node.snapshot()

    daemon.restart()

    assert node.snapshot() == before
    for entry in spec:
        assert_nic_configured(node, entry)


def test_unreadable_state_file_is_set_aside_loudly_and_its_nics_count_as_in_use(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    daemon.stop()
    state = daemon.root / "var/lib/multinic/state.json"
    state.write_text('{"version": 1, "interfaces": [{"macAddress": "fa:16:3e:00:00:01", '
                     '"id": 1e99}]}')

    daemon.start()

    assert "The managed state file is not valid" in daemon.log()
    assert not state.exists()
    assert list(state.parent.glob("state.json.broken-*"))
    error, message = daemon.apply_error(spec)
    assert error == "io.multinic.Agent1.Error.InterfaceInUse", message


def test_daemon_exits_when_the_system_bus_goes_so_that_systemd_restarts_it(build, node,
                                                                           tmp_path):
    from conftest import Bus, Daemon, make_root
    bus = Bus()
    d = Daemon(build, node, bus, make_root(tmp_path / "root"))
    d.start()
    proc = d.proc
    try:
        bus.proc.terminate()
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if proc.poll() is None:
            proc.kill()  # it did not go by itself: the test fails below, leaving nothing behind
            proc.wait()
        d.proc = None  # gone already; nothing for stop() to end
        d.stop()
        bus.close()

    assert rc == 1
    assert "Lost the system bus; exiting" in d.log()


def test_daemon_killed_half_way_through_an_apply_still_gives_the_nics_back(node, build,
                                                                           start_daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon = start_daemon(env=fault_env(build, KILL_AT_ADDR_ADD=spec[1]["address"]))

    # Both NICs are renamed, the first one has its address: then multinicd dies.
    with pytest.raises(dbus.exceptions.DBusException):
        daemon.apply(spec)
    assert daemon.proc.wait(5) == -9
    assert {l["ifname"] for l in node.links()} >= {"multinic0", "multinic1"}
    daemon.proc = daemon.client = None
    daemon.extra_env.pop("MULTINIC_FAULT_KILL_AT_ADDR_ADD")
    daemon.start()

    results = daemon.remove()

    assert sorted(r["state"] for r in results) == ["removed"] * len(spec)
    for entry, original in zip(spec, ("ens4", "ens5")):
        assert_nic_released(node, entry["macAddress"], original, entry)
    state, _ = daemon.apply(spec)
    assert state == "Configured"
    for entry in spec:
        assert_nic_configured(node, entry)


def test_a_nic_whose_takeover_failed_is_not_kept_across_a_restart(node, build, start_daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon = start_daemon(env=fault_env(build, ADDR_ADD=spec[1]["address"]))

    state, _ = daemon.apply(spec)
    assert state == "Failed"
    assert node.link("ens5") is not None  # rolled back
    daemon.restart()

    assert sorted(i["macAddress"] for i in daemon.prop("Interfaces")) == [spec[0]["macAddress"]]
    results = daemon.remove()
    assert [r["macAddress"] for r in results] == [spec[0]["macAddress"]]
    assert node.link("ens5") is not None and node.ipv4("ens5") == []


def test_daemon_killed_after_its_answer_but_before_its_state_file_keeps_what_it_answered(
        node, build, start_daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon = start_daemon()
    daemon.apply(spec)
    daemon.stop()
    daemon.extra_env.update(fault_env(build, STATE_SAVE_DELAY_MS="4000"))
    daemon.start()
    changed = [dict(spec[0], address="10.1.0.21"), spec[1]]

    # The answer comes; multinicd dies before the state file written after it is renamed.
    state, _ = daemon.apply_raw(changed)
    assert str(state) == "Configured"
    os.kill(daemon.proc.pid, signal.SIGKILL)
    assert daemon.proc.wait(5) == -9
    daemon.proc = daemon.client = None
    daemon.extra_env.pop("MULTINIC_FAULT_STATE_SAVE_DELAY_MS")
    daemon.start()

    # The restarted daemon applies what it answered, not the spec before it.
    poll(lambda: [i["address"] for i in daemon.prop("Interfaces")] == ["10.1.0.21", "10.1.0.12"],
         timeout=5, what="Interfaces with the answered address")
    for entry in changed:
        assert_nic_configured(node, entry)
    assert [a["local"] for a in node.ipv4("multinic0")] == ["10.1.0.21"]
