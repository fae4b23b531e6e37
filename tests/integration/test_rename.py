"""Renames: swaps between NICs, names a NIC gives up, and altnames."""
from conftest import add_case01_nics, assert_nic_configured, case01_spec

A, B = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02"


def test_names_swap_between_two_managed_nics(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon.apply(spec)
    spec[0]["name"], spec[1]["name"] = spec[1]["name"], spec[0]["name"]

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    for entry in spec:
        assert_nic_configured(node, entry)


def test_nic_takes_the_name_the_other_nic_gives_up(node, daemon):
    add_case01_nics(node)
    spec = case01_spec()
    spec[0]["name"], spec[1]["name"] = "ens5", "ens4"

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert (node.name_of(A), node.name_of(B)) == ("ens5", "ens4")
    for entry in spec:
        assert_nic_configured(node, entry)


def test_rename_to_an_altname_of_the_same_nic_works(node, daemon):
    node.nic("ens4", A)
    node.ip("link", "property", "add", "dev", "ens4", "altname", "multinic0")
    spec = case01_spec()[:1]

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert_nic_configured(node, spec[0])


def test_rename_to_an_altname_of_another_nic_fails_naming_the_holder(node, daemon):
    add_case01_nics(node)
    node.ip("link", "property", "add", "dev", "ens5", "altname", "multinic0")
    spec = case01_spec()[:1]
    ens5 = node.link("ens5")

    state, results = daemon.apply(spec)

    assert state == "Failed"
    assert results[0]["state"] == "failed"
    assert "ens5" in results[0]["message"], results[0]
    assert node.name_of(A) == "ens4"
    assert node.ipv4("ens4") == []
    assert node.link("ens5") == ens5
