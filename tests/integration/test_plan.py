"""Plan says what Apply would change, and changes nothing itself."""
import pytest

from conftest import add_case01_nics, case01_spec

CONFIGURE = {"rename", "set-mtu", "add-address", "set-up", "set-sysctl", "add-rule", "add-route"}
RELEASE = {"remove-address", "remove-rule", "remove-route"}


def actions_for(changes, mac):
    return {c["action"] for c in changes if c["macAddress"] == mac}


def test_plan_lists_every_change_and_changes_nothing(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    before, files = node.snapshot(), daemon.files()

    changes = daemon.plan(spec)

    assert node.snapshot() == before
    assert daemon.files() == files
    for entry in spec:
        assert CONFIGURE <= actions_for(changes, entry["macAddress"]), changes
    assert all(isinstance(c["detail"], str) and c["detail"] for c in changes), changes
    assert {c["name"] for c in changes} <= {"ens4", "ens5", "multinic0", "multinic1"}


def test_apply_reports_the_changes_it_made(node, daemon):
    add_case01_nics(node)

    _, results = daemon.apply(case01_spec())

    assert all(r["changes"] for r in results), results
    assert daemon.plan(case01_spec()) == []


def test_plan_lists_the_release_of_a_dropped_entry(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    before = node.snapshot()

    changes = daemon.plan(spec[:1])

    assert actions_for(changes, spec[0]["macAddress"]) == set()
    assert RELEASE <= actions_for(changes, spec[1]["macAddress"]), changes
    assert node.snapshot() == before


def test_mtu_change_is_planned_and_applied_alone(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    spec[1]["mtu"] = 1400

    changes = daemon.plan(spec)
    with node.monitor() as mon:
        state, results = daemon.apply(spec)

    assert [(c["macAddress"], c["action"]) for c in changes] == [(spec[1]["macAddress"], "set-mtu")]
    assert [r["state"] for r in results] == ["unchanged", "configured"]
    assert node.link("multinic1")["mtu"] == 1400
    assert [l for l in mon.output.splitlines() if not l.startswith(" ")] and \
        all("multinic1" in l for l in mon.output.splitlines() if not l.startswith(" ")), mon.output


def _renamed(spec, *names):
    return [dict(e, name=n) for e, n in zip(spec, names)]


TRANSITIONS = {
    "fresh": ([], case01_spec()),
    "address-change": (case01_spec(), [dict(case01_spec()[0], address="10.1.0.21"),
                                       case01_spec()[1]]),
    "drop-one-renumber-other": (case01_spec(), [dict(case01_spec()[1], id=0, name="multinic0")]),
    "swap-names": (case01_spec(), _renamed(case01_spec(), "multinic1", "multinic0")),
    "remove-all": (case01_spec(), []),
}


def per_nic(pairs):
    out = {}
    for mac, detail in pairs:
        out.setdefault(mac, []).append(detail)
    return out


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_plan_lists_exactly_what_apply_then_does(node, daemon, transition):
    add_case01_nics(node)
    first, second = TRANSITIONS[transition]
    if first:
        daemon.apply(first)

    planned = per_nic((c["macAddress"], c["detail"]) for c in daemon.plan(second))
    _, results = daemon.apply(second)
    done = per_nic((r["macAddress"], d) for r in results for d in r["changes"])

    assert planned == done
    assert daemon.plan(second) == []


def test_plan_names_a_nic_that_apply_would_fail(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    spec[0]["mtu"] = 70000

    changes = daemon.plan(spec)

    fails = [c for c in changes if c["action"] == "fail"]
    assert [(c["macAddress"], c["name"]) for c in fails] == [(spec[0]["macAddress"], "multinic0")]
    assert "interfaces[0].mtu: 70000 is above the maximum" in fails[0]["detail"]
    assert {c["macAddress"] for c in changes if c["action"] != "fail"} == {spec[1]["macAddress"]}
