"""multinicd beside a real systemd-udevd: a NIC that appears is configured only once udev has
finished with it, and udev's event is what sets the apply off. udevd runs for the node's network
namespace (the kernel sends a network device's uevents there only) in a mount namespace of its
own: a tmpfs over /run, the test's rules instead of the host's, no .link files."""
import contextlib
import os
import platform
import re
import subprocess
from pathlib import Path

import pytest

from conftest import (Daemon, by_mac, case01_spec, make_root, nic_configured, poll,
                      socket_inodes)

UDEVD = "/lib/systemd/systemd-udevd"
FIRST, LATE = case01_spec()  # LATE's MAC appears while the daemon runs
EPOLL_WAIT_SYSCALLS = {"x86_64": ("232", "281", "441"),
                       "aarch64": ("22", "441")}.get(platform.machine(), ())

# /run/netns is carried over so that `ip netns exec` still finds the node. udevd reads the test's
# rules only (/run/udev/rules.d is on the new tmpfs), an empty udev.conf and no .link file (it
# runs no net_setup_link either: no rule asks for it). Its own `ip netns exec` remounts /sys for
# the node, so that /sys/class/net shows the node's links and no other.
SETUP = """set -e
scratch=$1 ns=$2
mkdir -p "$scratch/netns"
mount --rbind /run/netns "$scratch/netns"
mount -t tmpfs tmpfs /run
mkdir -p /run/netns
mount --move "$scratch/netns" /run/netns
mount --bind "$scratch/rules" /etc/udev/rules.d
mount --bind "$scratch/empty" /usr/lib/udev/rules.d
mount --bind "$scratch/empty" /etc/systemd/network
mount --bind "$scratch/empty" /usr/lib/systemd/network
mount --bind "$scratch/udev.conf" /etc/udev/udev.conf
exec ip netns exec "$ns" {udevd} --debug
"""

# Holds the late NIC's add event (udev is not finished with it) until the test creates a file.
HOLD_RULE = """ACTION=="add", SUBSYSTEM=="net", ATTR{{address}}=="{mac}", \\
  PROGRAM=="/bin/sh -c 'while ! test -e {release}; do /bin/sleep 0.05; done'"
"""


class Udevd:
    """systemd-udevd for node's namespace, loading only rules (text of one rules file)."""

    def __init__(self, node, scratch, rules=""):
        self.node, self.scratch = node, scratch
        self.release = scratch / "release"
        for d in ("rules", "empty"):
            (scratch / d).mkdir()
        (scratch / "rules/50-test.rules").write_text(rules)
        (scratch / "udev.conf").write_text("")
        self.log = scratch / "udevd.log"
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh",
                                          "-c", SETUP.format(udevd=UDEVD), "sh", str(scratch),
                                          node.ns], stdout=f, stderr=subprocess.STDOUT)
        # unshare, sh and ip netns exec each exec the next: the pid is udevd's.
        self.enter = ["nsenter", "-t", str(self.proc.pid), "-m", "-n"]
        poll(lambda: self.proc.poll() is None and self.run("test", "-S", "/run/udev/control",
                                                          check=False).returncode == 0,
             timeout=10, what=f"systemd-udevd's control socket:\n{self.text()}")
        # The links made before udevd ran get their add event now, as at boot.
        self.udevadm("trigger", "--action=add", "--subsystem-match=net")
        self.settle()

    def run(self, *args, check=True):
        p = subprocess.run([*self.enter, *map(str, args)], capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}: "
                                 f"{p.stderr.strip()}\nudevd:\n{self.text()}")
        return p

    def udevadm(self, *args):
        return self.run("udevadm", *args).stdout

    def settle(self):
        self.udevadm("settle", "--timeout=30")

    def initialized(self, mac):
        """udev has finished with the link that has mac: its database entry exists."""
        ifindex = self.node.link_by_mac(mac)["ifindex"]
        return self.run("test", "-e", f"/run/udev/data/n{ifindex}", check=False).returncode == 0

    def text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self):
        self.release.touch()  # a held event ends, so that no rule program outlives udevd
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_udevd(node, scratch, rules=""):
    if subprocess.run(["test", "-x", UDEVD]).returncode != 0:
        pytest.skip(f"{UDEVD} is not installed")
    scratch.mkdir()
    return Udevd(node, scratch, rules)


@pytest.fixture
def start_udaemon(request, build, node, bus, tmp_path):
    """start_udaemon(rules): udevd with those rules, then multinicd in its mount namespace (so
    that it sees /run/udev/control and watches udev) with case01 applied, its first NIC there.
    No periodic check comes within a test: only an event can set an apply off."""
    with contextlib.ExitStack() as stack:
        def start(rules=""):
            udevd = start_udevd(node, tmp_path / "udev", rules)
            stack.callback(udevd.close)
            d = Daemon(build, node, bus, make_root(tmp_path / "root"), ["--check-interval=3600"])
            d.wrapper = udevd.enter[:-1]  # its own `ip netns exec` enters the node
            request.node.multinicd = [d]
            stack.callback(d.stop)
            d.start()
            node.nic("ens4", FIRST["macAddress"])
            udevd.settle()
            assert udevd.initialized(FIRST["macAddress"]), \
                f"udevd saw no uevent of the node's links:\n{udevd.text()}"
            state, _ = d.apply(case01_spec())
            assert state == "Pending"
            return udevd, d
        yield start


def late_nic(daemon):
    return by_mac(daemon.prop("Interfaces"))[LATE["macAddress"]]


def timers_usec(pid):
    """When each timerfd of process pid expires next, in usec from now: 0 if it has expired
    unread, None if it is off."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[timerfd]":
                info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
                ticks = int(re.search(r"ticks: *(\d+)", info).group(1))
                sec, nsec = map(int, re.search(r"it_value: \((\d+), (\d+)\)", info).groups())
                out.append(0 if ticks else sec * 1000000 + nsec // 1000 if sec or nsec else None)
    return out


def idle(daemon):
    """multinicd has handled every event it was sent: it waits in epoll, its netlink sockets
    hold nothing unread and no timer but the periodic check (an hour away) is armed, that is no
    reconcile is due."""
    pid = daemon.proc.pid
    inodes = socket_inodes(pid)
    for line in Path(f"/proc/{pid}/net/netlink").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[-1] in inodes and int(fields[4]):
            return False
    if Path(f"/proc/{pid}/syscall").read_text().split()[0] not in EPOLL_WAIT_SYSCALLS:
        return False
    return all(t is None or t > 600 * 1000000 for t in timers_usec(pid))


def appear(node, daemon):
    """The late NIC appears, and multinicd is done with the events that sent."""
    node.nic("ens5", LATE["macAddress"])
    node.wait_settled()
    poll(lambda: idle(daemon), timeout=10, what="multinicd idle")


def test_a_nic_is_configured_only_once_udev_has_finished_with_it(tmp_path, node, start_udaemon):
    udevd, daemon = start_udaemon(HOLD_RULE.format(mac=LATE["macAddress"],
                                                   release=tmp_path / "udev/release"))

    appear(node, daemon)

    assert late_nic(daemon)["state"] == "pending"
    assert late_nic(daemon)["message"] == \
        f"waiting for udev to finish with ens5 (MAC {LATE['macAddress']})"
    assert daemon.prop("State") == "Pending"
    assert node.link_by_mac(LATE["macAddress"])["ifname"] == "ens5"
    assert node.ipv4("ens5") == []
    assert not udevd.initialized(LATE["macAddress"])

    udevd.release.touch()

    poll(lambda: nic_configured(node, LATE), timeout=10, what="the NIC configured")
    assert udevd.initialized(LATE["macAddress"])
    poll(lambda: daemon.prop("State") == "Configured", timeout=10, what="State Configured")
    assert late_nic(daemon)["state"] == "configured"
    assert "drift" not in late_nic(daemon)


def test_the_udev_event_sets_the_apply_off(node, start_udaemon):
    udevd, daemon = start_udaemon()
    udevd.udevadm("control", "--stop-exec-queue")
    appear(node, daemon)
    assert not udevd.initialized(LATE["macAddress"])
    assert late_nic(daemon)["state"] == "pending"

    # udevd now runs the add event; no rule changes the link, so the kernel sends no event.
    udevd.udevadm("control", "--start-exec-queue")

    poll(lambda: nic_configured(node, LATE), timeout=10, what="the NIC configured")
    assert udevd.initialized(LATE["macAddress"])
    poll(lambda: daemon.prop("State") == "Configured", timeout=10, what="State Configured")
