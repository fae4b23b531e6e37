"""A change to the main table's default route during Apply rolls the whole Apply back."""
from conftest import add_case01_nics, assert_nic_configured, by_mac, case01_spec


def test_default_route_lost_during_apply_rolls_every_nic_back(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    # The default route takes multinic0's address as its source, so moving that address makes
    # the kernel drop the default route in the middle of the Apply.
    node.ip("route", "replace", "default", "via", "10.0.0.1", "dev", "eth0", "src",
            spec[0]["address"])
    moved = [dict(e) for e in spec]
    moved[0]["address"] = "10.1.0.21"
    moved[1]["mtu"] = 1400
    main_before = node.routes("main")

    state, results = daemon.apply(moved)

    assert state == "Failed"
    for entry in spec:
        result = by_mac(results)[entry["macAddress"]]
        assert result["state"] == "failed"
        assert "default route changed during Apply; rolled back" in result["message"]
        assert_nic_configured(node, entry)
    assert "default route" in daemon.prop("LastError")
    # Undoing multinicd's own changes is not enough: the kernel dropped the default route with
    # the address it took as source, and the rollback puts it back as it was.
    assert node.routes("main") == main_before


def test_default_route_untouched_by_a_normal_apply(node, daemon):
    add_case01_nics(node)
    before = node.routes("main")

    state, _ = daemon.apply(case01_spec())

    assert state == "Configured"
    assert node.routes("main") == before
