"""multinicd's start: the READY=1 it tells systemd (Type=notify), and the command lines of
multinicd and multinicctl (--help, --version, options they do not know)."""
import os
import re
import socket
import struct
import subprocess
import time

import pytest

import mnbus
from conftest import REPO, Daemon, make_root

VERSION = re.search(r"version : '([^']+)'", (REPO / "meson.build").read_text()).group(1)
NOTIFY_TIMEOUT = 10
# A bus address nothing listens on: the command lines below must not need a bus.
NO_BUS = "unix:path=/nonexistent/system_bus_socket"
CTL_VERBS = ["apply", "plan", "status", "remove"]


class NotifySocket:
    """A unix datagram socket standing in for systemd's notification socket; it asks the kernel
    for each sender's credentials, as systemd does to match the message to the unit's main PID."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def receive(self, timeout):
        """({key: value}, sender pid) of the next message, or None after timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except (socket.timeout, BlockingIOError):
            return None
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _, _ = struct.unpack("iII", payload[:12])
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        return fields, pid

    def receive_until(self, key, proc, timeout=NOTIFY_TIMEOUT):
        """Messages up to and including the first that sets key; fails if proc exits first."""
        deadline = time.monotonic() + timeout
        messages = []
        while not messages or key not in messages[-1][0]:
            message = self.receive(0.2)
            if message:
                messages.append(message)
                continue
            assert proc.poll() is None, f"multinicd exited {proc.poll()}; notified {messages}"
            assert time.monotonic() < deadline, f"no {key}= within {timeout} s: {messages}"
        return messages

    def close(self):
        self.sock.close()


def start_unwaited(daemon, env):
    """Starts daemon's process as Daemon.start() does, with env added, but does not wait for it
    to own its name: the test decides what it waits for."""
    log = daemon.root.parent / f"multinicd-{len(daemon.logs)}.log"
    daemon.logs.append(log)
    with open(log, "w") as f:
        daemon.proc = subprocess.Popen(
            ["ip", "netns", "exec", daemon.node.ns, daemon.binary, "--root", daemon.root,
             "--log-target=console", *daemon.args],
            stdout=f, stderr=subprocess.STDOUT,
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=daemon.bus.address, **env))


def run_program(build, program, *args):
    """program (daemon/multinicd or daemon/multinicctl of build) with args, without a bus."""
    return subprocess.run([str(build / "daemon" / program), *args], capture_output=True,
                          text=True, timeout=10,
                          env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=NO_BUS))


def man_options(page):
    """The long options a man page documents, in order."""
    return re.findall(r"^\*(?:-\w\*, \*)?(--[\w-]+)", (REPO / "docs/man" / page).read_text(), re.M)


def help_options(text):
    """The long options a --help text lists, in order."""
    return re.findall(r"^ +(?:-\w,? +)?(--[\w-]+)", text, re.M)


# --- READY=1 ---------------------------------------------------------------------------------

def wait_ready(request, build, node, bus, tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    request.addfinalizer(notify.close)
    daemon = Daemon(build, node, bus, make_root(tmp_path / "root"))
    request.node.multinicd = [daemon]
    request.addfinalizer(daemon.stop)  # a second stop() does nothing
    start_unwaited(daemon, {"NOTIFY_SOCKET": str(notify.path)})
    messages = notify.receive_until("READY", daemon.proc)
    return daemon, notify, messages


def test_ready_is_notified_once_the_bus_name_is_owned_and_answers(request, build, node, bus,
                                                                  tmp_path):
    daemon, _, messages = wait_ready(request, build, node, bus, tmp_path)
    # Checked before anything else can happen: systemd starts the units ordered after
    # multinicd.service as soon as READY=1 comes, and they may call at once.
    owned = bus.conn.name_has_owner(mnbus.BUS_NAME)
    owner = bus.name_owner_pid(mnbus.BUS_NAME)

    fields, pid = messages[-1]
    assert fields["READY"] == "1", messages
    assert owned and owner == daemon.proc.pid, "READY=1 came before the bus name was owned"
    daemon.client = mnbus.Client(bus.address)
    assert daemon.prop("Version") == VERSION
    # systemd takes notifications from the main PID only (NotifyAccess=main).
    assert pid == daemon.proc.pid, f"READY=1 sent by pid {pid}, not the daemon's"
    assert fields.get("STATUS"), messages


def test_stopping_is_notified_on_sigterm(request, build, node, bus, tmp_path):
    daemon, notify, _ = wait_ready(request, build, node, bus, tmp_path)
    proc = daemon.proc

    daemon.stop()

    message = notify.receive(timeout=1)
    assert message, "no STOPPING=1 after SIGTERM"
    fields, pid = message
    assert fields.get("STOPPING") == "1", fields
    assert pid == proc.pid


# --- command lines ---------------------------------------------------------------------------

def test_multinicd_help_lists_the_options_of_its_man_page(build):
    p = run_program(build, "multinicd", "--help")

    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: multinicd"), p.stdout
    assert p.stderr == ""
    assert sorted(help_options(p.stdout)) == sorted(man_options("multinicd.8.scd"))


@pytest.mark.parametrize("program", ["multinicd", "multinicctl"])
def test_version_prints_name_and_project_version(build, program):
    p = run_program(build, program, "--version")

    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{program} {VERSION}\n"


def test_multinicctl_help_lists_every_verb_and_the_options_of_its_man_page(build):
    p = run_program(build, "multinicctl", "--help")

    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: multinicctl"), p.stdout
    verbs = re.search(r"^Verbs:\n((?:  .*\n)+)", p.stdout, re.M)
    assert verbs, p.stdout
    assert [line.split()[0] for line in verbs.group(1).splitlines()] == CTL_VERBS
    assert sorted(help_options(p.stdout)) == sorted(man_options("multinicctl.1.scd"))


@pytest.mark.parametrize("verb", CTL_VERBS)
def test_multinicctl_verb_help_exits_0_without_a_bus(build, verb):
    p = run_program(build, "multinicctl", verb, "--help")

    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"Usage: multinicctl {verb}"), p.stdout
    assert "--help" in p.stdout


@pytest.mark.parametrize("program,args,named", [
    ("multinicd", ["--bogus"], "--bogus"),
    ("multinicd", ["--table-base"], "--table-base"),
    ("multinicctl", ["--bogus"], "--bogus"),
    ("multinicctl", ["status", "--bogus"], "--bogus"),
    ("multinicctl", ["bogus"], "bogus"),
])
def test_unknown_option_or_verb_exits_nonzero_naming_it(build, program, args, named):
    p = run_program(build, program, *args)

    assert p.returncode != 0
    assert named in p.stderr, p.stderr
    assert p.stdout == ""
