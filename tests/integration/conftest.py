"""Fixtures that run multinicd against real links in network namespaces on a private system bus."""
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dbus
import pytest

import mnbus

REPO = Path(__file__).resolve().parents[2]
PRODUCT_UUID = "b4975c5f-50bb-479f-9e7b-a430815ae852"
PRIMARY_MAC = "fa:16:3e:00:00:00"
TABLE_BASE = 100
PRIORITY_BASE = 1000
NIC_SYSCTLS = {"arp_ignore": 1, "arp_announce": 2, "rp_filter": 2}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "UndefinedBehaviorSanitizer")
NOBODY = 65534
DEBIAN_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
RECVMSG_SYSCALL = {"x86_64": 47, "aarch64": 212}.get(platform.machine())

_ns_counter = itertools.count()


def _build_dirs():
    dirs = os.environ.get("MULTINIC_BUILDS", str(REPO / "build")).split()
    return [Path(d) if os.path.isabs(d) else REPO / d for d in dirs]


BUILDS = _build_dirs()


def run(*args, check=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and p.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(f"`{command}` exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def socket_inodes(pid):
    """The inode numbers of the sockets process pid holds, as /proc/net/* lists them."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
            if m:
                inodes.add(m.group(1))
    return inodes


def poll(predicate, timeout=5.0, interval=0.01, what="condition"):
    """Returns predicate()'s first truthy value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def fault_env(build, **faults):
    """Environment that preloads the fault shim (tests/fault/fault.c) into multinicd.
    fault_env(build, RENAME_EBUSY="1", ADDR_ADD="10.1.0.22")"""
    env = {"LD_PRELOAD": str(Path(build) / "tests" / "libmultinic-fault.so"),
           "ASAN_OPTIONS": "detect_leaks=1:verify_asan_link_order=0"}
    env.update({f"MULTINIC_FAULT_{k}": v for k, v in faults.items()})
    return env


def by_mac(entries):
    return {e["macAddress"]: e for e in entries}


def spec_name(entry):
    return entry.get("name", f"multinic{entry['id']}")


def prefixlen(cidr):
    return int(cidr.split("/")[1])


def dbus_error(fn, *args, **kwargs):
    """Calls fn, which must fail with a D-Bus error; returns (error name, message)."""
    with pytest.raises(dbus.exceptions.DBusException) as info:
        fn(*args, **kwargs)
    return info.value.get_dbus_name(), info.value.get_dbus_message()


# --- specs shared by several tests ----------------------------------------------------------------

def case01_spec():
    """Field case 01: two NICs in one subnet."""
    return [
        {"id": 0, "name": "multinic0", "macAddress": "fa:16:3e:00:00:01", "address": "10.1.0.11",
         "cidr": "10.1.0.0/24", "mtu": 1450},
        {"id": 1, "name": "multinic1", "macAddress": "fa:16:3e:00:00:02", "address": "10.1.0.12",
         "cidr": "10.1.0.0/24", "mtu": 1450},
    ]


def add_case01_nics(node):
    node.nic("ens4", "fa:16:3e:00:00:01")
    node.nic("ens5", "fa:16:3e:00:00:02")


# --- network namespaces ---------------------------------------------------------------------------

def netns_add(name):
    run("ip", "netns", "add", name)
    # IPv6 stays off so that no DAD or autoconf event arrives while a test watches or compares.
    run("ip", "netns", "exec", name, "sh", "-c",
        "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6;"
        "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
    run("ip", "-n", name, "link", "set", "lo", "up")


def netns_delete(name):
    run("ip", "netns", "delete", name, check=False)


def remove_stale_namespaces():
    """Namespaces a killed earlier run of this suite left behind (their pid is gone)."""
    for line in run("ip", "netns", "list").splitlines():
        m = re.match(r"(mnt-(\d+)-\d+[a-z0-9]*)\b", line)
        if m and not Path(f"/proc/{m.group(2)}").exists():
            netns_delete(m.group(1))


class Client:
    """A host in the NICs' subnet, bridged to chosen NIC peers in the fabric namespace."""

    PING = r"""
import os, socket, struct, sys, time
dst, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.1)
ident, seq = os.getpid() & 0xffff, 0
while time.monotonic() < deadline:
    seq += 1
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"multinic"
    s.sendto(struct.pack("!BBHHH", 8, 0, csum(body), ident, seq) + b"multinic", (dst, 0))
    try:
        while True:
            data, peer = s.recvfrom(2048)
            hl = (data[0] & 15) * 4
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[hl:hl + 8])
            if peer[0] == dst and kind == 0 and rid == ident:
                sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"""

    def __init__(self, ns, address):
        self.ns = ns
        self.address = address

    def ping(self, address, timeout=5):
        """True when address answers an ICMP echo within timeout seconds."""
        p = subprocess.run(["ip", "netns", "exec", self.ns, "/usr/bin/python3", "-c", self.PING,
                            address, str(timeout)], capture_output=True, text=True)
        return p.returncode == 0

    def neighbours(self):
        entries = json.loads(run("ip", "-j", "-n", self.ns, "neigh", "show", "dev", "eth0") or "[]")
        return {e["dst"]: e.get("lladdr") for e in entries}


class Node:
    """A fresh host: a node namespace with the baseline eth0, NIC peers in a fabric namespace."""

    def __init__(self):
        self.ns = f"mnt-{os.getpid()}-{next(_ns_counter)}"
        self.fabric = self.ns + "f"
        self.namespaces = []
        self.peers = {}  # MAC -> peer name in the fabric namespace
        self._n = itertools.count()

    def setup(self):
        for ns in (self.fabric, self.ns):
            self.namespaces.append(ns)
            netns_add(ns)
        self.nic("eth0", PRIMARY_MAC, up=True)
        self.ip("addr", "add", "10.0.0.10/24", "dev", "eth0")
        self.ip("route", "add", "default", "via", "10.0.0.1", "dev", "eth0")
        self.wait_settled()

    def teardown(self):
        for ns in reversed(self.namespaces):
            netns_delete(ns)

    # commands
    def ip(self, *args, check=True):
        return run("ip", "-n", self.ns, *args, check=check)

    def ip_json(self, *args):
        return json.loads(run("ip", "-j", "-n", self.ns, *args) or "[]")

    def run(self, *args, check=True):
        return run("ip", "netns", "exec", self.ns, *args, check=check)

    def fabric_ip(self, *args):
        return run("ip", "-n", self.fabric, *args)

    # setup helpers
    def nic(self, name, mac, up=False):
        """A veth pair: name with mac here, its peer up in the fabric namespace."""
        peer = f"p{next(self._n)}"
        self.ip("link", "add", name, "address", mac, "type", "veth", "peer", "name", peer,
                "netns", self.fabric)
        self.fabric_ip("link", "set", peer, "up")
        self.peers[mac.lower()] = peer
        if up:
            self.ip("link", "set", name, "up")
        return name

    def client(self, address, macs):
        """A client namespace at address (a.b.c.d/n) on one bridge with the peers of macs."""
        n = next(self._n)
        ns = f"{self.ns}c{n}"
        self.namespaces.append(ns)
        netns_add(ns)
        bridge, port = f"br{n}", f"c{n}"
        self.fabric_ip("link", "add", bridge, "type", "bridge")
        for mac in macs:
            self.fabric_ip("link", "set", self.peers[mac.lower()], "master", bridge)
        self.fabric_ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.fabric_ip("link", "set", port, "master", bridge)
        self.fabric_ip("link", "set", port, "up")
        self.fabric_ip("link", "set", bridge, "up")
        run("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        return Client(ns, address)

    def write_sysctl(self, path, value):
        """path relative to /proc/sys/net/ipv4/conf, e.g. 'all/rp_filter'."""
        self.run("sh", "-c", f"echo {value} > /proc/sys/net/ipv4/conf/{path}")

    def wait_settled(self, timeout=5):
        """Waits until every veth's operstate follows its flags: linkwatch updates it late, and
        the event it sends then would land in whatever the test watches next."""
        def settled():
            for link in self.links():
                if link.get("linkinfo", {}).get("info_kind") != "veth":
                    continue
                flags = link["flags"]
                want = ("UP" if "LOWER_UP" in flags else "LOWERLAYERDOWN") if "UP" in flags \
                    else "DOWN"
                if link["operstate"] != want:
                    return False
            return True
        poll(settled, timeout, what=f"links in {self.ns} to settle")

    # observations
    def links(self):
        return self.ip_json("-d", "link", "show")

    def link(self, name):
        return next((l for l in self.links() if l["ifname"] == name), None)

    def link_by_mac(self, mac):
        """The veth that carries mac (the tests give every veth its own MAC)."""
        found = [l for l in self.links() if l.get("address") == mac.lower()
                 and l.get("linkinfo", {}).get("info_kind") == "veth"]
        assert len(found) == 1, f"{len(found)} veths with {mac}"
        return found[0]

    def name_of(self, mac):
        return self.link_by_mac(mac)["ifname"]

    def ipv4(self, name):
        """The IPv4 addr_info entries of link name."""
        infos = self.ip_json("-4", "addr", "show", "dev", name)
        return infos[0]["addr_info"] if infos else []

    def ipv4_strings(self, name):
        return [f"{a['local']}/{a['prefixlen']}" for a in self.ipv4(name)]

    def rules(self):
        return self.ip_json("-4", "rule", "show")

    def rules_from(self, address):
        return [r for r in self.rules() if r.get("src") == address]

    def routes(self, table="main"):
        """The IPv4 routes of a table; a table the kernel never made holds none."""
        try:
            return self.ip_json("-4", "route", "show", "table", str(table))
        except AssertionError as e:
            if "FIB table does not exist" in str(e):
                return []
            raise

    def sysctls(self, ifname, keys=tuple(NIC_SYSCTLS)):
        out = self.run("sh", "-c", f"cd /proc/sys/net/ipv4/conf/{ifname} && cat {' '.join(keys)}")
        return dict(zip(keys, map(int, out.split())))

    def snapshot(self):
        """Everything Apply may change in the kernel, as text; byte-equal means unchanged."""
        self.wait_settled()
        parts = [run("ip", "-j", "-n", self.ns, *args) for args in
                 (("addr", "show"), ("link", "show"), ("rule", "show"),
                  ("route", "show", "table", "all"))]
        parts.append(self.run("sh", "-c", "cd /proc/sys/net/ipv4/conf && "
                              "grep -r . */arp_ignore */arp_announce */rp_filter"))
        return "\n".join(parts)

    @contextlib.contextmanager
    def monitor(self):
        """Records what `ip monitor link address route rule` prints during the block."""
        self.wait_settled()
        mon = IpMonitor(self.ns)
        mon.start()
        try:
            yield mon
        finally:
            mon.stop()


class IpMonitor:
    """`ip monitor` with exact start and end: its netlink socket is bound before the block runs,
    and at the end every queued event has been read and printed (socket empty, ip in recvmsg)."""

    def __init__(self, ns):
        self.ns = ns
        self.lines = []
        self.output = ""

    def _socket(self):
        assert self.proc.poll() is None, f"ip monitor exited: {''.join(self.lines)}"
        inodes = socket_inodes(self.proc.pid)
        with open(f"/proc/{self.proc.pid}/net/netlink") as f:
            for line in f.read().splitlines()[1:]:
                sk, eth, pid, groups, rmem, *_rest, inode = line.split()
                if inode in inodes and eth == "0" and int(groups, 16):
                    return {"rmem": int(rmem)}
        return None

    def _idle(self):
        sock = self._socket()
        if not sock or sock["rmem"]:
            return False
        with open(f"/proc/{self.proc.pid}/syscall") as f:
            nr = f.read().split()[0]
        return RECVMSG_SYSCALL is None or nr == str(RECVMSG_SYSCALL)

    def start(self):
        self.proc = subprocess.Popen(["ip", "-n", self.ns, "monitor", "link", "address", "route",
                                      "rule"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout),
                                       daemon=True)
        self.reader.start()
        poll(self._socket, what="ip monitor to subscribe")

    def stop(self):
        try:
            poll(self._idle, what="ip monitor to print every event")
        finally:
            self.proc.terminate()
            self.proc.wait(5)
            self.reader.join(5)
            self.output = "".join(self.lines)


# --- the bus --------------------------------------------------------------------------------------

BUS_CONFIG = REPO / "tests" / "system-bus.conf.in"  # shared with the demo and the benchmarks


class Bus:
    """A private dbus-daemon configured like a system bus; policies are the bus policy files it
    includes (default: multinicd's), wrap a command prefix it runs under (that execs it)."""

    def __init__(self, policies=(REPO / "units" / "io.multinic.Agent1.conf",), wrap=()):
        # Outside pytest's 0700 tmp so that the unprivileged client can reach the socket.
        self.dir = Path(tempfile.mkdtemp(prefix="multinic-bus-"))
        os.chmod(self.dir, 0o755)
        config = self.dir / "system.conf"
        includes = "\n  ".join(f"<include>{p}</include>" for p in policies)
        config.write_text(BUS_CONFIG.read_text()
                          .replace("@SOCKET@", str(self.dir / "system_bus_socket"))
                          .replace("<include>@POLICY@</include>", includes))
        self.proc = subprocess.Popen([*wrap, "dbus-daemon", f"--config-file={config}", "--nofork",
                                      "--nopidfile", "--print-address"],
                                     stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            self.close()
            raise AssertionError("dbus-daemon did not start")
        self.conn = dbus.bus.BusConnection(self.address)

    def name_owner_pid(self, name):
        try:
            return int(self.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus",
                                               "GetConnectionUnixProcessID", "s", (name,)))
        except dbus.exceptions.DBusException:
            return None

    def close(self):
        if getattr(self, "conn", None):
            self.conn.close()
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the daemon -----------------------------------------------------------------------------------

def make_root(path, os_release=DEBIAN_OS_RELEASE, product_uuid=PRODUCT_UUID, config=None,
              files=None):
    """A scratch --root: SMBIOS system UUID, os-release and, if given, multinicd.conf and files
    ({relative path: text, bytes or (text or bytes, mode)}; a path ending in / is a directory)."""
    (path / "sys/class/dmi/id").mkdir(parents=True)
    (path / "sys/class/dmi/id/product_uuid").write_text(product_uuid + "\n")
    (path / "etc").mkdir()
    (path / "etc/os-release").write_text(os_release)
    if config is not None:
        (path / "etc/multinic").mkdir()
        (path / "etc/multinic/multinicd.conf").write_text(config)
    for rel, content in (files or {}).items():
        target = path / rel
        if rel.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        content, mode = content if isinstance(content, tuple) else (content, 0o644)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(target, mode)
    return path


class Daemon:
    """multinicd from one build, running in a node's namespace, and a client for it."""

    def __init__(self, build, node, bus, root, args=(), env=None, umask=None):
        self.binary = Path(build) / "daemon" / "multinicd"
        self.extra_env = dict(env or {})
        self.umask = umask  # None: the test process's
        self.label = Path(build).name
        self.node, self.bus, self.root, self.args = node, bus, root, list(args)
        self.wrapper = []  # a command prefix that execs the rest, such as nsenter
        self.logs = []
        self.proc = None
        self.client = None

    def start(self):
        if not self.binary.exists():
            pytest.fail(f"{self.binary} does not exist: run `ninja -C {self.binary.parent.parent}`")
        log = self.root.parent / f"multinicd-{len(self.logs)}.log"
        self.logs.append(log)
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address, **self.extra_env)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(log, "w") as f:
            self.proc = subprocess.Popen([*self.wrapper, "ip", "netns", "exec", self.node.ns,
                                          self.binary,
                                          "--root", self.root, "--log-target=console", *self.args],
                                         stdout=f, stderr=subprocess.STDOUT, env=env,
                                         umask=-1 if self.umask is None else self.umask)

        def owned():
            rc = self.proc.poll()
            assert rc is None, f"multinicd exited {rc}:\n{self.log()}"
            return (self.bus.conn.name_has_owner(mnbus.BUS_NAME)
                    and self.bus.name_owner_pid(mnbus.BUS_NAME) == self.proc.pid)
        poll(owned, timeout=10, interval=0.02, what=f"multinicd to own {mnbus.BUS_NAME}")
        self.client = mnbus.Client(self.bus.address)

    def stop(self):
        """SIGTERM; the daemon must exit 0 within 5 s and without a sanitizer report."""
        if self.client:
            self.client.close()
            self.client = None
        if not self.proc:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"multinicd did not exit within 5 s of SIGTERM:\n{self.log()}")
        text = self.log()
        reports = [m for m in SANITIZER_MARKERS if m in text]
        assert not reports, f"sanitizer report in multinicd's stderr:\n{text}"
        assert rc == 0, f"multinicd exited {rc} after SIGTERM:\n{text}"

    def restart(self):
        self.stop()
        self.start()

    def log(self):
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # the API
    def apply(self, interfaces, options=None):
        """Returns (state, results) as plain Python values, once multinicd is done with the
        call: it writes its state file right after it answers, so a property read (answered
        after that) comes back before the test looks at the files."""
        state, results = self.client.call("Apply", interfaces, options or {})
        self.prop("Version")
        return str(state), mnbus.plain(results)

    def apply_raw(self, interfaces, options=None):
        return self.client.call("Apply", interfaces, options or {})

    def plan(self, interfaces, options=None):
        return mnbus.plain(self.client.call("Plan", interfaces, options or {}))

    def remove(self, options=None):
        """As apply(): returns once multinicd is done with the call."""
        results = self.client.call("Remove", options or {})
        self.prop("Version")
        return mnbus.plain(results)

    def prop(self, name):
        return mnbus.plain(self.client.prop(name))

    def apply_error(self, interfaces, options=None):
        return dbus_error(self.client.call, "Apply", interfaces, options or {})

    def plan_error(self, interfaces, options=None):
        return dbus_error(self.client.call, "Plan", interfaces, options or {})

    def call_as(self, uid, method, *args, interactive=False):
        """method (Apply, Plan, Remove or Get) called by uid, allowing interactive authorization
        if asked: {"ok": reply} or {"error": name, "message": text}, with the caller's "pid" and
        bus name ("sender")."""
        p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                            "/usr/bin/python3", "-c", Path(mnbus.__file__).read_text(),
                            self.bus.address, method, json.dumps(args),
                            *(["--interactive"] if interactive else [])],
                           capture_output=True, text=True, timeout=60, cwd="/")
        assert p.returncode == 0, f"client as uid {uid} failed: {p.stderr}"
        return json.loads(p.stdout)

    # files
    def files(self):
        """Every file under --root but the inputs: relative path -> (mode, bytes)."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and not rel.startswith("sys/") and rel != "etc/os-release":
                out[rel] = (path.stat().st_mode, path.read_bytes())
        return out


# --- fixtures -------------------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds something big (the packages); -m 'not slow' "
                                       "leaves it out")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        daemons = getattr(item, "multinicd", []) + \
            [d for d in getattr(item, "funcargs", {}).values() if isinstance(d, Daemon)]
        for d in dict.fromkeys(daemons):
            report.sections.append((f"multinicd stderr ({d.label})", d.log() or "(empty)"))


@pytest.fixture(scope="session", autouse=True)
def _no_stale_namespaces():
    remove_stale_namespaces()
    yield
    mine = f"mnt-{os.getpid()}-"
    left = [l for l in run("ip", "netns", "list").splitlines() if l.startswith(mine)]
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture(scope="session", params=BUILDS, ids=[b.name for b in BUILDS])
def build(request):
    return request.param


@pytest.fixture(scope="session")
def bus():
    b = Bus()
    yield b
    b.close()


@contextlib.contextmanager
def node_context():
    n = Node()
    try:
        n.setup()
        yield n
    finally:
        n.teardown()


@contextlib.contextmanager
def daemon_context(item, build, node, bus, root, args=(), env=None, umask=None, **root_files):
    d = Daemon(build, node, bus, make_root(root, **root_files), args, env, umask)
    if item is not None:
        item.multinicd = getattr(item, "multinicd", []) + [d]
    try:
        d.start()
        yield d
    finally:
        d.stop()


@pytest.fixture
def node():
    with node_context() as n:
        yield n


@pytest.fixture
def daemon(request, build, node, bus, tmp_path):
    with daemon_context(request.node, build, node, bus, tmp_path / "root") as d:
        yield d


@pytest.fixture
def start_daemon(request, build, node, bus, tmp_path):
    """start_daemon(*args, env=..., umask=..., os_release=..., product_uuid=..., config=...,
    files=...): multinicd with extra arguments, environment, umask or other root files."""
    with contextlib.ExitStack() as stack:
        def start(*args, env=None, umask=None, **root_files):
            root = tmp_path / f"root{len(getattr(request.node, 'multinicd', []))}"
            return stack.enter_context(daemon_context(request.node, build, node, bus, root, args,
                                                      env, umask, **root_files))
        yield start


@pytest.fixture
def network_manager(tmp_path):
    """network_manager(ns, keyfile_dir): a real NetworkManager on a bus of its own, loading
    keyfiles from keyfile_dir only (persistence.NetworkManager); stopped at teardown."""
    from persistence import NetworkManager
    started = []

    def start(ns, keyfile_dir):
        nm = NetworkManager(ns, keyfile_dir, tmp_path)
        started.append(nm)
        nm.start()
        return nm
    yield start
    for nm in started:
        nm.stop()


# --- assertions shared by the tests ---------------------------------------------------------------

def assert_nic_configured(node, entry, table_base=TABLE_BASE, priority_base=PRIORITY_BASE):
    """The kernel holds entry (a spec dict) as the contract says, policy routing on."""
    name, address, cidr = spec_name(entry), entry["address"], entry["cidr"]
    link = node.link_by_mac(entry["macAddress"])
    assert link["ifname"] == name
    assert "UP" in link["flags"]
    if "mtu" in entry:
        assert link["mtu"] == entry["mtu"]
    addrs = node.ipv4(name)
    assert [f"{a['local']}/{a['prefixlen']}" for a in addrs] == [f"{address}/{prefixlen(cidr)}"]
    assert addrs[0].get("noprefixroute") is True, addrs
    rules = node.rules_from(address)
    assert [(r["priority"], r["table"]) for r in rules] == \
        [(priority_base + entry["id"], str(table_base + entry["id"]))], rules
    routes = node.routes(table_base + entry["id"])
    assert [(r["dst"], r["dev"], r.get("scope"), r.get("prefsrc")) for r in routes] == \
        [(cidr, name, "link", address)], routes
    assert not [r for r in node.routes("main") if r["dst"] == cidr], "prefix route in main"
    assert node.sysctls(name) == NIC_SYSCTLS


def nic_configured(node, entry):
    """assert_nic_configured() as a predicate, for poll()."""
    try:
        assert_nic_configured(node, entry)
        return True
    except AssertionError:
        return False

def assert_nic_released(node, mac, original_name, entry, table_base=TABLE_BASE):
    """Nothing of entry is left on the NIC with mac, which is called original_name again."""
    link = node.link_by_mac(mac)
    assert link["ifname"] == original_name
    assert node.ipv4(original_name) == []
    assert node.rules_from(entry["address"]) == []
    assert node.routes(table_base + entry["id"]) == []
