"""multinicctl against the real daemon: files in, tables or JSON out, exit codes 0/1/2."""
import json
import os
import subprocess

import pytest

from conftest import REPO, assert_nic_configured, assert_nic_released, poll

SAMPLE = REPO / "crds" / "samples" / "viola2-biz-worker01.yaml"
SAMPLE_SPEC = [
    {"id": 0, "name": "multinic0", "macAddress": "fa:16:3e:1c:1a:6e", "address": "11.11.11.37",
     "cidr": "11.11.11.0/24", "mtu": 1450},
    {"id": 1, "name": "multinic1", "macAddress": "fa:16:3e:0a:17:3b", "address": "11.11.11.148",
     "cidr": "11.11.11.0/24", "mtu": 1450},
]


@pytest.fixture
def ctl(build, daemon):
    def run(*args, input=None):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=daemon.bus.address)
        return subprocess.run([str(build / "daemon" / "multinicctl"), *map(str, args)],
                              capture_output=True, text=True, input=input, env=env)
    return run


@pytest.fixture
def sample_node(node):
    node.nic("ens4", "fa:16:3e:1c:1a:6e")
    node.nic("ens5", "fa:16:3e:0a:17:3b")
    return node


def test_apply_of_the_sample_cr_configures_both_nics(sample_node, ctl):
    p = ctl("apply", "-f", SAMPLE)

    assert p.returncode == 0, p.stderr
    assert "State: Configured" in p.stdout
    for entry in SAMPLE_SPEC:
        assert_nic_configured(sample_node, entry)


def test_plan_after_apply_is_empty_in_text_and_json(sample_node, ctl):
    assert ctl("apply", "-f", SAMPLE).returncode == 0

    text, js = ctl("plan", "-f", SAMPLE), ctl("plan", "--json", "-f", SAMPLE)

    assert text.returncode == 0 and "No changes" in text.stdout
    assert js.returncode == 0 and json.loads(js.stdout) == {"changes": []}


def test_json_output_carries_every_result_key(sample_node, ctl):
    p = ctl("apply", "--json", "-f", SAMPLE)

    out = json.loads(p.stdout)
    assert out["state"] == "Configured"
    assert {r["macAddress"]: r["state"] for r in out["results"]} == \
        {e["macAddress"]: "configured" for e in SAMPLE_SPEC}
    assert all({"id", "name", "message", "changes"} <= r.keys() for r in out["results"])


def test_plain_json_spec_from_stdin(sample_node, ctl):
    spec = {"interfaces": SAMPLE_SPEC[:1], "options": {}}

    p = ctl("apply", "-f", "-", input=json.dumps(spec))

    assert p.returncode == 0, p.stderr
    assert_nic_configured(sample_node, SAMPLE_SPEC[0])


def test_invalid_file_exits_2_naming_the_field_and_changes_nothing(sample_node, ctl):
    before = sample_node.snapshot()
    bad = SAMPLE.read_text().replace("fa:16:3e:0a:17:3b", "fa-16-3e-0a-17-3b")

    p = ctl("apply", "-f", "-", input=bad)

    assert p.returncode == 2
    assert "spec.interfaces[1].macAddress" in p.stderr
    assert sample_node.snapshot() == before


def test_other_instance_exits_1_and_changes_nothing(sample_node, ctl):
    before = sample_node.snapshot()
    other = SAMPLE.read_text().replace("b4975c5f-50bb", "00000000-50bb")

    p = ctl("apply", "-f", "-", input=other)

    assert p.returncode == 1
    assert "instanceId" in p.stderr
    assert sample_node.snapshot() == before


def test_status_lists_managed_nics_and_remove_releases_them(sample_node, ctl):
    assert ctl("apply", "-f", SAMPLE).returncode == 0

    status = json.loads(ctl("status", "--json").stdout)
    removed = ctl("remove")

    assert status["State"] == "Configured"
    assert sorted(i["name"] for i in status["Interfaces"]) == ["multinic0", "multinic1"]
    assert removed.returncode == 0, removed.stderr
    for entry, original in zip(SAMPLE_SPEC, ("ens4", "ens5")):
        assert_nic_released(sample_node, entry["macAddress"], original, entry)


def test_status_shows_what_was_found_changed_and_healed(sample_node, ctl):
    assert ctl("apply", "-f", SAMPLE).returncode == 0

    sample_node.ip("link", "set", "multinic0", "mtu", "1400")
    poll(lambda: sample_node.link("multinic0")["mtu"] == 1450, timeout=5, what="MTU healed")

    text = poll(lambda: (lambda p: "changed behind" in p.stdout and p.stdout)(ctl("status")),
                timeout=5, what="the drift in multinicctl status")
    assert "multinic0: changed behind multinicd's back at " in text
    assert "  mtu: found 1400, wanted 1450" in text
    status = json.loads(ctl("status", "--json").stdout)
    nic = next(i for i in status["Interfaces"] if i["name"] == "multinic0")
    assert {"field": "mtu", "wanted": "1450", "found": "1400"} in nic["drift"]


@pytest.mark.parametrize("verb", ["apply", "plan", "status", "remove"])
def test_every_verb_has_help(ctl, verb):
    p = ctl(verb, "--help")

    assert p.returncode == 0
    assert p.stdout.startswith(f"Usage: multinicctl {verb}")


def test_unreadable_file_exits_2(ctl):
    p = ctl("apply", "-f", "/nonexistent/spec.yaml")

    assert p.returncode == 2
    assert "/nonexistent/spec.yaml" in p.stderr


def test_two_concurrent_applies_both_succeed_and_leave_one_whole_spec(sample_node, ctl, build, daemon):
    other = [dict(e, address=a, mtu=1400)
             for e, a in zip(SAMPLE_SPEC, ("11.11.11.237", "11.11.11.248"))]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=daemon.bus.address)
    procs = [subprocess.Popen([str(build / "daemon" / "multinicctl"), "apply", "--json", "-f", "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    for p, spec in zip(procs, (SAMPLE_SPEC, other)):
        p.stdin.write(json.dumps({"interfaces": spec}))
        p.stdin.close()
    outs = [json.loads(p.stdout.read()) for p in procs]

    assert [p.wait() for p in procs] == [0, 0]
    assert [o["state"] for o in outs] == ["Configured", "Configured"]
    # Whichever ran last left its whole spec behind, not a mix of both.
    last = other if sample_node.ipv4("multinic0")[0]["local"].startswith("11.11.11.2") \
        else SAMPLE_SPEC
    for entry in last:
        assert_nic_configured(sample_node, entry)


# --- apply that ends Failed (field case 10: an MTU above the device's maximum) -------------------

def failing_spec_json():
    spec = [dict(e) for e in SAMPLE_SPEC]
    spec[0]["mtu"] = 70000  # veth's maximum is 65535
    return json.dumps({"interfaces": spec})


def test_apply_that_ends_failed_exits_1(sample_node, ctl):
    p = ctl("apply", "-f", "-", input=failing_spec_json())

    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout.startswith("State: Failed\n"), p.stdout
    [row] = [line for line in p.stdout.splitlines() if line.startswith("multinic0 ")]
    assert "fa:16:3e:1c:1a:6e" in row and " failed " in row, row
    assert "70000 is above the maximum 65535 of ens4" in row, row
    assert "Apply ended in state Failed: 1 interface(s) failed" in p.stderr, p.stderr
    # The other NIC is configured all the same; the failed one is as it was.
    assert_nic_configured(sample_node, SAMPLE_SPEC[1])
    assert sample_node.name_of(SAMPLE_SPEC[0]["macAddress"]) == "ens4"

    js = ctl("apply", "--json", "-f", "-", input=failing_spec_json())

    assert js.returncode == 1, (js.stdout, js.stderr)
    out = json.loads(js.stdout)
    assert out["state"] == "Failed"
    assert [r["state"] for r in out["results"]] == ["failed", "unchanged"], out


def test_apply_that_ends_failed_names_the_nic_and_the_reason_on_stderr(sample_node, ctl):
    p = ctl("apply", "-f", "-", input=failing_spec_json())

    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "multinic0 (fa:16:3e:1c:1a:6e): " in p.stderr, p.stderr
    assert "maximum 65535" in p.stderr, p.stderr
