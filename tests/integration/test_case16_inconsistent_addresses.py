"""Field case 16: addresses that do not fit their cidr, or are taken, are refused up front."""
import pytest

from conftest import assert_nic_configured, case01_spec

INVALID = "io.multinic.Agent1.Error.InvalidSpec"
IN_USE = "io.multinic.Agent1.Error.InterfaceInUse"


def variant(**fields):
    return [dict(case01_spec()[0], **fields)]


def same_address_twice():
    first, second = case01_spec()
    return [first, dict(second, address=first["address"])]


VARIANTS = {
    "octet-out-of-range": (variant(address="10.1.400.11"), INVALID, "interfaces[0].address"),
    "outside-cidr": (variant(address="10.1.1.11"), INVALID, "interfaces[0].address"),
    "cidr-not-network": (variant(cidr="10.1.0.5/24"), INVALID, "interfaces[0].cidr"),
    "network-address": (variant(address="10.1.0.0"), INVALID, "interfaces[0].address"),
    "broadcast-address": (variant(address="10.1.0.255"), INVALID, "interfaces[0].address"),
    "held-by-eth0": (variant(address="10.0.0.10", cidr="10.0.0.0/24"), IN_USE,
                     "interfaces[0].address"),
    "same-address-twice": (same_address_twice(), INVALID, "interfaces[1].address"),
}


@pytest.mark.parametrize("spec,error,field", VARIANTS.values(), ids=VARIANTS.keys())
def test_inconsistent_address_is_refused_before_any_change(node, daemon, spec, error, field):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")
    before, files = node.snapshot(), daemon.files()

    name, message = daemon.apply_error(spec)

    assert name == error, message
    assert message.startswith(field), message
    assert node.snapshot() == before
    assert daemon.files() == files


def test_slash_31_uses_both_addresses_and_is_applied(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = variant(address="10.1.0.1", cidr="10.1.0.0/31")

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert_nic_configured(node, spec[0])
