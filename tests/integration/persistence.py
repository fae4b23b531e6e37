"""Helpers for the persistence tests: scratch roots per backend, file observations, and the real
tools that read the daemon's files (NetworkManager on a private bus, udev's net_setup_link)."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from conftest import Bus, netns_add, poll

MARKER = "# Managed by multinicd: it rewrites or deletes this file; do not edit."
UBUNTU_OS_RELEASE = """PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
"""
ROCKY_OS_RELEASE = """NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
"""
NETPLAN_DIR = "etc/netplan"
KEYFILE_DIR = "etc/NetworkManager/system-connections"
LINK_DIR = "etc/systemd/network"
SYSCTL_FILE = "etc/sysctl.d/90-multinic.conf"
NM_BUS_POLICY = Path("/usr/share/dbus-1/system.d/org.freedesktop.NetworkManager.conf")


def netplan_path(name):
    return f"{NETPLAN_DIR}/90-multinic-{name}.yaml"


def keyfile_path(name):
    return f"{KEYFILE_DIR}/multinic-{name}.nmconnection"


def link_path(name):
    return f"{LINK_DIR}/10-multinic-{name}.link"


def netplan_root(**files):
    """Root files of an Ubuntu root set up for netplan (start_daemon(**netplan_root(...)))."""
    return {"os_release": UBUNTU_OS_RELEASE, "files": {f"{NETPLAN_DIR}/": None, **files}}


def rocky_root(**files):
    return {"os_release": ROCKY_OS_RELEASE, "files": files}


def etc_files(root):
    """Every file under <root>/etc but os-release: relative path -> stat_result."""
    out = {}
    for path in sorted((root / "etc").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != "etc/os-release":
            out[rel] = path.stat()
    return out


def identities(root):
    """What a rewrite of any file under --root would change: inode, mtime, ctime, mode, owner and
    bytes, per relative path (the test inputs under sys/ and os-release left out)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("sys/") and rel != "etc/os-release":
            s = path.stat()
            out[rel] = (s.st_ino, s.st_mtime_ns, s.st_ctime_ns, s.st_mode, s.st_uid, s.st_gid,
                        path.read_bytes())
    return out


def parse_unit(text):
    """systemd unit-style text (.link, .network) as a list of (section, {key: value})."""
    sections = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            sections.append((m.group(1), {}))
        else:
            key, _, value = line.partition("=")
            sections[-1][1][key.strip()] = value.strip()
    return sections


def sections(unit, name):
    return [values for section, values in unit if section == name]


def parse_sysctl_file(text):
    """{(ifname, key): value} of net/ipv4/conf/<ifname>/<key> = <value> lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.fullmatch(r"net/ipv4/conf/([^/]+)/(\w+) = (\d+)", line)
        assert m, f"unexpected line in the sysctl.d file: {line!r}"
        out[(m.group(1), m.group(2))] = int(m.group(3))
    return out


class FileWatcher:
    """A thread that reads every file in a directory (each through one open descriptor, so mode,
    owner and bytes belong to the same inode) as fast as it can until stopped; a name that
    disappears between listing and open is recorded as missing."""

    def __init__(self, directory, names=None):
        self.directory = Path(directory)
        self.names = names  # None: every entry, temporary files included
        self.seen = []  # (name, mode, uid, gid, bytes) or (name, None, ...) when missing
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self, name):
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return (name, None, None, None, None)
        try:
            st = os.fstat(fd)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return (name, st.st_mode & 0o7777, st.st_uid, st.st_gid, b"".join(chunks))
        finally:
            os.close(fd)

    def _run(self):
        while not self._stop.is_set():
            names = self.names if self.names is not None else os.listdir(self.directory)
            for name in names:
                self.seen.append(self._read(name))
            self.rounds += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


# --- NetworkManager on a private bus --------------------------------------------------------------

NM_CONFIG = """[main]
plugins=keyfile
auth-polkit=false
# Nothing of the host: no resolv.conf, no hostname, no automatic profiles, no device touched.
dns=none
rc-manager=unmanaged
hostname-mode=none
no-auto-default=*

[keyfile]
path={path}
unmanaged-devices=*

[logging]
level=INFO
"""


class NetworkManager:
    """A real NetworkManager in namespace ns, with its own mount namespace (tmpfs over /run and
    /var/lib/NetworkManager) and its own bus, loading keyfiles from keyfile_dir only."""

    def __init__(self, ns, keyfile_dir, workdir):
        self.ns, self.keyfile_dir = ns, Path(keyfile_dir)
        self.workdir = Path(tempfile.mkdtemp(prefix="nm-", dir=workdir))
        self.bus = None
        self.proc = None
        self.logfile = self.workdir / "NetworkManager.log"

    def start(self):
        self.bus = Bus(policies=(NM_BUS_POLICY,))
        config = self.workdir / "NetworkManager.conf"
        config.write_text(NM_CONFIG.format(path=self.keyfile_dir))
        confd = self.workdir / "conf.d"
        confd.mkdir()
        script = ('mount -t tmpfs -o mode=0755 tmpfs /run && '
                  'mount -t tmpfs -o mode=0700 tmpfs /var/lib/NetworkManager && '
                  'exec NetworkManager --debug --no-daemon --config="$1" --config-dir="$2"')
        with open(self.logfile, "w") as log:
            # ip netns exec, unshare (without --fork) and sh all exec: the pid is NetworkManager's.
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts",
                 "--propagation", "private", "sh", "-c", script, "sh", str(config), str(confd)],
                stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address))

        def running():
            assert self.proc.poll() is None, f"NetworkManager exited:\n{self.log()}"
            p = self.nmcli("-t", "-f", "RUNNING", "general", check=False)
            return p.returncode == 0 and p.stdout.strip() == "running"
        poll(running, timeout=15, interval=0.05, what="NetworkManager to run")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.bus:
            self.bus.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def nmcli(self, *args, check=True):
        p = subprocess.run(["nmcli", *args], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address))
        if check and p.returncode != 0:
            raise AssertionError(f"nmcli {' '.join(args)} exited {p.returncode}: {p.stderr}\n"
                                 f"NetworkManager log:\n{self.log()}")
        return p

    def profiles(self):
        """Profile name -> UUID, as `nmcli connection show` lists them."""
        out = self.nmcli("-t", "-f", "NAME,UUID", "connection", "show").stdout
        return dict(line.rsplit(":", 1) for line in out.splitlines() if line)

    def wait_profiles(self, names, timeout=10):
        """Waits until exactly names are listed (settings load after the bus name is taken)."""
        poll(lambda: set(self.profiles()) == set(names), timeout=timeout, interval=0.05,
             what=f"nmcli to list {sorted(names)}; it lists {sorted(self.profiles())}; "
                  f"NetworkManager log:\n{self.log()}")
        return self.profiles()

    def show(self, name):
        """Every property of profile name: {'ipv4.addresses': '10.1.0.11/24', ...}."""
        out = self.nmcli("--escape", "no", "-t", "-f", "all", "connection", "show", "id",
                         name).stdout
        return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)

    def reload(self):
        self.nmcli("connection", "reload")


# --- udev -----------------------------------------------------------------------------------------

def net_setup_link(ns, link_dir, ifname):
    """The ID_* properties udev's net_setup_link gives ifname in namespace ns when link_dir is
    /etc/systemd/network (bind-mounted in a private mount namespace, tmpfs over /run)."""
    script = ('mount -t tmpfs -o mode=0755 tmpfs /run && '
              'mount --bind "$1" /etc/systemd/network && '
              'exec udevadm test-builtin net_setup_link "/sys/class/net/$2"')
    p = subprocess.run(["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation",
                        "private", "sh", "-c", script, "sh", str(link_dir), ifname],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"udevadm test-builtin net_setup_link {ifname}: {p.stderr}"
    props = dict(line.split("=", 1) for line in p.stdout.splitlines()
                 if re.match(r"ID_\w+=", line))
    props["log"] = p.stderr
    return props


def scratch_namespace(node, suffix):
    """Another network namespace, deleted with the node."""
    ns = f"{node.ns}{suffix}"
    node.namespaces.append(ns)
    netns_add(ns)
    return ns


# --- roots per backend, for tests that check what a case leaves on disk ---------------------------

STATE_FILE = "var/lib/multinic/state.json"
BACKEND_ROOTS = {"netplan": netplan_root, "networkmanager": rocky_root}


def nic_files(backend, name):
    """The files a backend writes for NIC name alone (the sysctl.d file is shared)."""
    if backend == "netplan":
        return [netplan_path(name)]
    if backend == "networkmanager":
        return [keyfile_path(name), link_path(name)]
    return []


def start_backend(start_daemon, backend, **files):
    """multinicd on a root whose backend is backend ('netplan' or 'networkmanager'), checked
    through the Persistence property."""
    daemon = start_daemon(**BACKEND_ROOTS[backend](**files))
    assert daemon.prop("Persistence") == backend
    return daemon
