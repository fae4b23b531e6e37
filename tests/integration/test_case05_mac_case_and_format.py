"""Field case 05: MACs in upper case match; other spellings are refused. Run on roots with a real
persistence backend, so that "every file written" and "nothing on disk changes" cover files."""
import re

import pytest

from conftest import assert_nic_configured, case01_spec
from persistence import STATE_FILE, nic_files, start_backend

MAC = "fa:16:3e:00:00:01"
# The MAC in any case, colons or not: every spelling of it that a file may hold.
ANY_SPELLING = re.compile(rb"fa[:-]?16[:-]?3e[:-]?00[:-]?00[:-]?01", re.I)
BACKENDS = ["netplan", "networkmanager"]


def spec_with_mac(mac):
    entry = dict(case01_spec()[0], macAddress=mac)
    return [entry]


@pytest.mark.parametrize("backend", BACKENDS)
def test_upper_case_mac_matches_and_is_stored_lower_case(node, start_daemon, backend):
    daemon = start_backend(start_daemon, backend)
    node.nic("ens4", MAC)

    state, results = daemon.apply(spec_with_mac(MAC.upper()))

    assert state == "Configured"
    assert results[0]["macAddress"] == MAC
    assert_nic_configured(node, case01_spec()[0])
    files = daemon.files()
    # Not vacuous: the state file and the backend's files for the NIC exist and hold the MAC.
    expected = [STATE_FILE, *nic_files(backend, "multinic0")]
    assert set(expected) <= set(files), sorted(files)
    for path in expected:
        assert MAC.encode() in files[path][1], f"{path} does not hold {MAC}"
    for path, (_, data) in files.items():
        spellings = set(ANY_SPELLING.findall(data))
        assert spellings <= {MAC.encode()}, f"{path} holds {spellings}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mac", ["fa-16-3e-00-00-01", "fa163e000001", "fa:16:3e:00:00",
                                 "fa:16:3e:00:00:0g"])
def test_malformed_mac_is_refused_naming_the_field(node, start_daemon, backend, mac):
    daemon = start_backend(start_daemon, backend)
    node.nic("ens4", MAC)
    node.nic("ens5", "fa:16:3e:00:00:02")
    # Files on disk first (of another NIC), so that "nothing on disk changes" can fail.
    other = dict(case01_spec()[1])
    assert daemon.apply([other])[0] == "Configured"
    before, files = node.snapshot(), daemon.files()
    assert set(nic_files(backend, "multinic1")) <= set(files), sorted(files)

    name, message = daemon.apply_error(spec_with_mac(mac) + [other])

    assert name == "io.multinic.Agent1.Error.InvalidSpec"
    assert message.startswith("interfaces[0].macAddress")
    assert node.snapshot() == before
    assert daemon.files() == files
