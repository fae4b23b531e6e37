"""Applying the same spec again is a no-op: no netlink write, no file rewritten."""
from conftest import add_case01_nics, case01_spec


def test_second_apply_is_unchanged_silent_and_plans_nothing(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    before, files = node.snapshot(), daemon.files()

    with node.monitor() as mon:
        state, results = daemon.apply(spec)

    assert state == "Configured"
    assert [r["state"] for r in results] == ["unchanged"] * len(spec)
    assert all(r.get("changes", []) == [] for r in results), results
    assert mon.output == ""
    assert node.snapshot() == before
    assert daemon.files() == files
    assert daemon.plan(spec) == []


def test_files_are_not_rewritten_by_a_second_apply(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)

    def identities():
        return {p: (s.st_ino, s.st_mtime_ns, s.st_ctime_ns)
                for p in daemon.root.rglob("*") if p.is_file() for s in [p.stat()]}
    written = identities()

    daemon.apply(spec)

    assert identities() == written
