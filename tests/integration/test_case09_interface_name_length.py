"""Field case 09: names longer than the kernel's 15 bytes or with '/' or ':' are refused, and so
is every other name the kernel would refuse at the rename: '.', '..', and 'all' and 'default',
which /proc/sys/net/ipv4/conf holds already."""
import pytest

from conftest import assert_nic_configured, case01_spec


def spec_named(name):
    return [dict(case01_spec()[0], name=name)]


@pytest.mark.parametrize("name", ["multinic-storage0", "multinic01234567", "a/b", "a:b", ".", "..",
                                  "all", "default"])
def test_invalid_name_is_refused_never_truncated(node, daemon, name):
    node.nic("ens4", "fa:16:3e:00:00:01")
    before, files = node.snapshot(), daemon.files()

    error, message = daemon.apply_error(spec_named(name))

    assert error == "io.multinic.Agent1.Error.InvalidSpec"
    assert message.startswith("interfaces[0].name")
    assert node.snapshot() == before
    assert daemon.files() == files


def test_fifteen_byte_name_is_applied(node, daemon):
    node.nic("ens4", "fa:16:3e:00:00:01")
    spec = spec_named("multinic0123456")
    assert len(spec[0]["name"].encode()) == 15

    state, results = daemon.apply(spec)

    assert state == "Configured"
    assert results[0]["name"] == "multinic0123456"
    assert_nic_configured(node, spec[0])
