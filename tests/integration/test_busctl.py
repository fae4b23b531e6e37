"""Apply of the sample node with plain `busctl call`, as README.md "Using it on a host" shows it."""
import subprocess

import yaml

from conftest import PRODUCT_UUID, REPO, assert_nic_configured

SAMPLE = REPO / "crds" / "samples" / "viola2-biz-worker01.yaml"


def sample_spec():
    spec = yaml.safe_load(SAMPLE.read_text())["spec"]
    assert len(spec["interfaces"]) == 2 and spec["instanceId"] == PRODUCT_UUID
    return spec


def busctl_apply_args(spec):
    """The README's busctl arguments for every interface of spec, and instanceId as an option."""
    args = ["Apply", "aa{sv}a{sv}", str(len(spec["interfaces"]))]
    for entry in spec["interfaces"]:
        args += ["6", "id", "u", str(entry["id"]), "name", "s", entry["name"],
                 "macAddress", "s", entry["macAddress"], "address", "s", entry["address"],
                 "cidr", "s", entry["cidr"], "mtu", "u", str(entry["mtu"])]
    return args + ["1", "instanceId", "s", spec["instanceId"]]


def busctl(daemon, *args):
    return subprocess.run(["busctl", f"--address={daemon.bus.address}", "call",
                           "io.multinic.Agent1", "/io/multinic/Agent1", "io.multinic.Agent1",
                           *args], capture_output=True, text=True, timeout=60)


def test_busctl_apply_of_the_sample_node_configures_both_nics(node, daemon):
    spec = sample_spec()
    for ifname, entry in zip(("ens4", "ens5"), spec["interfaces"]):
        node.nic(ifname, entry["macAddress"])

    p = busctl(daemon, *busctl_apply_args(spec))

    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith('saa{sv} "Configured" 2 '), p.stdout
    assert p.stdout.count('"state" s "configured"') == 2, p.stdout
    for entry in spec["interfaces"]:
        assert f'"macAddress" s "{entry["macAddress"]}"' in p.stdout, p.stdout
        assert_nic_configured(node, entry)
        assert node.link(entry["name"])["mtu"] == 1450
    assert sorted(i["address"] for i in daemon.prop("Interfaces")) == \
        ["11.11.11.148", "11.11.11.37"]


def test_busctl_apply_as_the_readme_writes_it(node, daemon):
    """The README's own line: one NIC, five keys, no options."""
    entry = sample_spec()["interfaces"][0]
    node.nic("ens4", entry["macAddress"])

    p = busctl(daemon, "Apply", "aa{sv}a{sv}", "1", "5", "id", "u", "0", "macAddress", "s",
               "fa:16:3e:1c:1a:6e", "address", "s", "11.11.11.37", "cidr", "s", "11.11.11.0/24",
               "mtu", "u", "1450", "0")

    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith('saa{sv} "Configured" 1 '), p.stdout
    assert_nic_configured(node, entry)
