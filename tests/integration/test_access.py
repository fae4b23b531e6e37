"""Without polkit on the bus only root may change the host; anyone may look and plan.
(The session bus of these tests has no polkitd; test_polkit.py runs one.)"""
from conftest import NOBODY, add_case01_nics, case01_spec

DENIED = "org.freedesktop.DBus.Error.AccessDenied"


def test_non_root_apply_and_remove_are_denied_and_change_nothing(node, daemon):
    add_case01_nics(node)
    before, files = node.snapshot(), daemon.files()

    apply = daemon.call_as(NOBODY, "Apply", case01_spec(), {})
    remove = daemon.call_as(NOBODY, "Remove", {}, interactive=True)

    assert apply.get("error") == DENIED, apply
    assert remove.get("error") == DENIED, remove
    assert "io.multinic.agent1.apply" in apply["message"], apply
    assert "polkit is not available" in remove["message"], remove
    assert node.snapshot() == before
    assert daemon.files() == files
    assert f"Remove called by uid {NOBODY} pid {remove['pid']}, authorization " \
        "polkit-unavailable" in daemon.log()


def test_non_root_remove_after_root_apply_is_denied(node, daemon):
    add_case01_nics(node)
    daemon.apply(case01_spec())
    before = node.snapshot()

    remove = daemon.call_as(NOBODY, "Remove", {})

    assert remove.get("error") == DENIED, remove
    assert node.snapshot() == before


def test_non_root_plan_and_property_reads_work(node, daemon):
    add_case01_nics(node)

    plan = daemon.call_as(NOBODY, "Plan", case01_spec(), {})

    assert plan.get("ok") == daemon.plan(case01_spec())
    assert plan["ok"], "an empty plan for unconfigured NICs"
    for name in ("Version", "State", "Interfaces", "LastApply", "LastError", "Persistence",
                 "InstanceId"):
        reply = daemon.call_as(NOBODY, "Get", name)
        assert reply.get("ok") == daemon.prop(name), (name, reply)
