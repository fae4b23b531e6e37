"""Managed state outlives the daemon process."""
from conftest import add_case01_nics, assert_nic_configured, assert_nic_released, case01_spec


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
