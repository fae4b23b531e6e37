"""multinicd's journal entries, read back from a real systemd-journald: each change with its
NIC's INTERFACE= and MAC= and MULTINIC_ACTION=, each call with its caller, each drift with what
was found."""
import json
import os
import subprocess

import pytest

from conftest import Daemon, add_case01_nics, case01_spec, fault_env, make_root, poll

JOURNALD = "/lib/systemd/systemd-journald"

# In a mount namespace of its own, with a tmpfs over /run (the host's /run/netns carried over,
# so that `ip netns exec` still finds the node): the host's journal is never written.
SETUP = """set -e
mkdir -p "$1/netns"
mount --rbind /run/netns "$1/netns"
mount -t tmpfs tmpfs /run
mkdir -p /run/netns /run/systemd/journal /run/log/journal
mount --move "$1/netns" /run/netns
exec {journald}
"""


class Journal:
    def __init__(self, scratch):
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh",
                                      "-c", SETUP.format(journald=JOURNALD), "sh", str(scratch)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.enter = ["nsenter", "-t", str(self.proc.pid), "-m"]
        poll(lambda: subprocess.run([*self.enter, "test", "-S", "/run/systemd/journal/socket"])
             .returncode == 0, timeout=10, what="systemd-journald's socket")

    def entries(self, **match):
        p = subprocess.run([*self.enter, "journalctl", "-D", "/run/log/journal", "-o", "json",
                            "--no-pager", *[f"{k}={v}" for k, v in match.items()]],
                           capture_output=True, text=True, check=True)
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def journal(node, tmp_path):
    """After node: its namespace must exist when the mount namespace copies /run/netns."""
    if not subprocess.run(["test", "-x", JOURNALD]).returncode == 0:
        pytest.skip(f"{JOURNALD} is not installed")
    j = Journal(tmp_path)
    yield j
    j.close()


@pytest.fixture
def start_jdaemon(build, node, bus, journal, tmp_path):
    """start_jdaemon(env=...): multinicd logging to the journal fixture's journald."""
    started = []

    def start(env=None):
        d = Daemon(build, node, bus, make_root(tmp_path / f"root{len(started)}"),
                   ["--log-target=journal"], env)
        d.wrapper = journal.enter
        started.append(d)
        d.start()
        return d
    yield start
    for d in started:
        d.stop()


@pytest.fixture
def jdaemon(start_jdaemon):
    return start_jdaemon()


def wait_for(journal, what, **match):
    return poll(lambda: journal.entries(**match), timeout=10, what=what)


def action_lines(journal, mac, at_least):
    """The entries of mac's changes, once there are at least at_least of them."""
    lines = [e for e in journal.entries(MAC=mac) if "MULTINIC_ACTION" in e]
    return lines if len(lines) >= at_least else None


def test_each_change_has_its_nic_and_action_in_the_journal_once(node, journal, jdaemon):
    add_case01_nics(node)
    spec = case01_spec()
    planned = jdaemon.plan(spec)

    state, _ = jdaemon.apply(spec)

    assert state == "Configured"
    for entry in spec:
        want = sorted(c["action"] for c in planned if c["macAddress"] == entry["macAddress"])
        assert {"rename", "set-mtu", "add-address", "set-up", "add-rule", "add-route"} <= set(want)
        # One info line per change made, no more and no fewer.
        changes = poll(lambda: action_lines(journal, entry["macAddress"], len(want)),
                       timeout=10, what="a line for each change")
        assert sorted(e["MULTINIC_ACTION"] for e in changes) == want
        assert {e["PRIORITY"] for e in changes} == {"6"}
        named = [e for e in changes if e["MULTINIC_ACTION"] == "add-address"]
        assert named[0]["INTERFACE"] == entry["name"]
        assert entry["address"] in named[0]["MESSAGE"]


def test_each_apply_logs_its_caller(node, journal, jdaemon):
    add_case01_nics(node)
    jdaemon.apply(case01_spec())
    jdaemon.apply_error([dict(case01_spec()[0], mtu=10)])

    calls = poll(lambda: len(journal.entries(MULTINIC_METHOD="Apply")) >= 2 and
                 journal.entries(MULTINIC_METHOD="Apply"), timeout=10, what="both calls")

    assert [c["MULTINIC_OUTCOME"].split(":")[0] for c in calls] == ["Configured", "invalid"]
    for c in calls:
        assert c["MULTINIC_CALLER_UID"] == "0" and c["MULTINIC_CALLER_PID"] == str(os.getpid())
        assert c["MULTINIC_AUTHORIZATION"] in ("root", "none")


def test_drift_is_logged_with_what_was_found(node, journal, jdaemon):
    add_case01_nics(node)
    spec = case01_spec()
    jdaemon.apply(spec)

    node.ip("link", "set", "multinic0", "mtu", "1400")

    drift = wait_for(journal, "the drift entry", MULTINIC_DRIFT_FIELD="mtu")
    assert drift[0]["MULTINIC_WANTED"] == "1450" and drift[0]["MULTINIC_FOUND"] == "1400"
    assert drift[0]["INTERFACE"] == "multinic0" and drift[0]["MAC"] == spec[0]["macAddress"]
    assert drift[0]["PRIORITY"] == "4"


def test_each_change_undone_in_a_rollback_is_logged(build, node, journal, start_jdaemon):
    add_case01_nics(node)
    spec = case01_spec()
    daemon = start_jdaemon(env=fault_env(build, ADDR_ADD=spec[1]["address"]))

    state, _ = daemon.apply(spec)

    assert state == "Failed"
    undone = wait_for(journal, "the undo entries", MAC=spec[1]["macAddress"])
    actions = [e["MULTINIC_ACTION"] for e in undone if "MULTINIC_ACTION" in e]
    # Every change made to the failed NIC is undone, and each undo has its line.
    made = [a for a in actions if not a.startswith("undo-")]
    assert "undo-rename" in actions and "undo-set-mtu" in actions, actions
    assert sorted(f"undo-{a}" for a in made) == sorted(a for a in actions if a.startswith("undo-"))


def test_a_rename_through_down_and_up_says_so(build, node, journal, start_jdaemon):
    daemon = start_jdaemon(env=fault_env(build, RENAME_EBUSY="1"))
    node.nic("ens4", "fa:16:3e:00:00:01", up=True)

    state, _ = daemon.apply(case01_spec()[:1], {"allowUp": True})

    assert state == "Configured"
    steps = wait_for(journal, "the down-up entry", MULTINIC_ACTION="set-down-up")
    assert steps[0]["MAC"] == "fa:16:3e:00:00:01" and "down for the rename" in steps[0]["MESSAGE"]
