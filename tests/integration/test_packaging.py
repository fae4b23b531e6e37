"""The Debian packages and the RPMs: what each holds, their lint, the unit's sandbox, and the
packaged daemon at work.

The packages are built once for this module with `scripts/package deb` and `scripts/package rpm`
(about 15 s and 6 s on the CI machine: a plain build of the whole tree, the unit tests,
debhelper or rpmbuild), then extracted with `dpkg -x` or rpm2cpio into scratch roots; nothing is
installed on the machine. lintian and rpmlint run on them as scripts/package runs them. Marked
slow: leave it out with `-m "not slow"`.
"""
import gzip
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import (DEBIAN_OS_RELEASE, REPO, Bus, Daemon, add_case01_nics,
                      assert_nic_configured, assert_nic_released, case01_spec, make_root, run)

pytestmark = pytest.mark.slow

VERSION = re.search(r"version : '([^']+)'", (REPO / "meson.build").read_text()).group(1)
EXPOSURE_MAX = 2.0
CAP_NET_ADMIN = 12
POLKIT = {
    "usr/share/polkit-1/actions/io.multinic.agent1.policy": "polkit/io.multinic.agent1.policy",
    "usr/share/polkit-1/rules.d/50-multinic.rules": "polkit/50-multinic.rules",
}
UNIT = "lib/systemd/system/multinicd.service"
RPM_UNIT = "usr/lib/systemd/system/multinicd.service"  # the RHEL family's merged /usr

# Installed file -> the source file it must be a copy of (None: built), in the Debian packages.
MULTINICD_FILES = {
    "usr/sbin/multinicd": None,
    "usr/bin/multinicctl": None,
    UNIT: "units/multinicd.service",
    "usr/lib/sysusers.d/multinic-bridge.conf": "units/multinic-bridge.sysusers",
    "usr/share/dbus-1/system.d/io.multinic.Agent1.conf": "units/io.multinic.Agent1.conf",
    "usr/share/dbus-1/system-services/io.multinic.Agent1.service":
        "units/io.multinic.Agent1.service",
    "usr/share/dbus-1/interfaces/io.multinic.Agent1.xml": "daemon/io.multinic.Agent1.xml",
    "usr/share/man/man1/multinicctl.1.gz": None,
    "usr/share/man/man5/multinicd.dbus.5.gz": None,
    "usr/share/man/man8/multinicd.8.gz": None,
    **POLKIT,
}
BRIDGE_FILES = {
    "usr/bin/multinic-bridge": None,
    "usr/share/man/man8/multinic-bridge.8.gz": None,
}
# The documentation each package carries, in /usr/share/doc/<package>/ (DEB, compressed, with
# the copyright file) or /usr/share/doc/<package>-<version>/ (RPM).
DOCS = {
    "multinicd": ["README.md", "docs/multinicd.md", "docs/persistence.md", "docs/deploy.md"],
    "multinic-bridge": ["docs/bridge.md"],
}
PACKAGES = {"multinicd": MULTINICD_FILES, "multinic-bridge": BRIDGE_FILES}
# RPMs also hold /usr/lib/.build-id/NN/REST symlinks to their ELF files (rpmbuild's build-id
# links, which the RHEL family keeps in the binary package).
BUILD_ID_LINK = re.compile(r"^usr/lib/\.build-id/[0-9a-f]{2}/[0-9a-f]+$")


def arch():
    return run("dpkg", "--print-architecture").strip()


def package(tmp_path_factory, kind):
    """The output directory of `scripts/package KIND`, built from the work tree as it is."""
    out = tmp_path_factory.mktemp(f"dist-{kind}")
    p = subprocess.run([REPO / "scripts/package", kind, "--no-lint", "--output", out],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, \
        f"scripts/package {kind} failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def deb_dist(tmp_path_factory):
    return package(tmp_path_factory, "deb")


@pytest.fixture(scope="module")
def debs(deb_dist, tmp_path_factory):
    """{package: extracted root} of the Debian packages."""
    roots = {}
    for name in PACKAGES:
        deb = deb_dist / f"{name}_{VERSION}_{arch()}.deb"
        assert deb.exists(), f"{deb.name} not built: {sorted(f.name for f in deb_dist.iterdir())}"
        roots[name] = tmp_path_factory.mktemp(name)
        run("dpkg", "-x", deb, roots[name])
    return roots


@pytest.fixture(scope="module")
def rpm_dist(tmp_path_factory):
    return package(tmp_path_factory, "rpm")


@pytest.fixture(scope="module")
def rpm_source(rpm_dist, tmp_path_factory):
    """The source tree the RPMs were built from: the tarball beside them, extracted."""
    tarball = rpm_dist / f"multinic-{VERSION}.tar.gz"
    assert tarball.exists(), f"no {tarball.name}: {sorted(f.name for f in rpm_dist.iterdir())}"
    top = tmp_path_factory.mktemp("rpm-source")
    with tarfile.open(tarball) as tar:
        tar.extractall(top)
    return top / f"multinic-{VERSION}"


@pytest.fixture(scope="module")
def rpms(rpm_dist, tmp_path_factory):
    """{package: extracted root} of the RPMs."""
    rpm_arch = run("rpm", "--eval", "%{_arch}").strip()
    roots = {}
    for name in PACKAGES:
        rpm = rpm_dist / f"{name}-{VERSION}-1.{rpm_arch}.rpm"
        assert rpm.exists(), f"{rpm.name} not built: {sorted(f.name for f in rpm_dist.iterdir())}"
        roots[name] = tmp_path_factory.mktemp(f"{name}-rpm")
        subprocess.run(f"rpm2cpio '{rpm}' | cpio -idm --quiet", shell=True, check=True,
                       cwd=roots[name])
    return roots


def files_of(root):
    """Relative paths of the regular files and symlinks under root."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def rpm_files(name):
    """PACKAGES[name] with the RPMs' paths."""
    return {RPM_UNIT if p == UNIT else p: s for p, s in PACKAGES[name].items()}


@pytest.mark.parametrize("name", PACKAGES)
def test_each_deb_holds_exactly_its_files(debs, name):
    root = debs[name]
    doc = f"usr/share/doc/{name}/"

    files = files_of(root)

    assert {f for f in files if not f.startswith(doc)} == set(PACKAGES[name])
    assert {doc + "copyright", doc + "changelog.gz"} | \
        {doc + Path(d).name + ".gz" for d in DOCS[name]} == {f for f in files if f.startswith(doc)}
    for path, source in PACKAGES[name].items():
        if source is not None:
            assert (root / path).read_bytes() == (REPO / source).read_bytes(), \
                f"{path} is not {source}"


@pytest.mark.parametrize("name", PACKAGES)
def test_each_rpm_holds_exactly_the_files_of_the_deb(rpms, rpm_source, name):
    """The same split as the Debian packages, from the tarball's sources (the last commit)."""
    root = rpms[name]
    doc = f"usr/share/doc/{name}-{VERSION}/"
    expected = rpm_files(name)

    files = files_of(root)

    build_ids = {f for f in files if BUILD_ID_LINK.match(f)}
    assert {f for f in files - build_ids if not f.startswith(doc)} == set(expected)
    assert {f for f in files if f.startswith(doc)} == {doc + Path(d).name for d in DOCS[name]}
    for path, source in expected.items():
        if source is not None:
            assert (root / path).read_bytes() == (rpm_source / source).read_bytes(), \
                f"{path} is not {source}"
    binaries = {p for p, s in expected.items() if s is None and "/man/" not in p}
    assert {(root / f).resolve().relative_to(root).as_posix() for f in build_ids} == binaries


def test_rpm_source_is_the_meson_dist_tarball_of_the_last_commit(rpm_dist, rpm_source):
    """meson dist packs the committed files, nothing else, and writes a checksum beside."""
    tarball = rpm_dist / f"multinic-{VERSION}.tar.gz"
    checksum = rpm_dist / f"{tarball.name}.sha256sum"
    assert checksum.exists(), "no meson dist checksum beside the tarball"
    subprocess.run(["sha256sum", "--check", "--quiet", checksum.name], cwd=rpm_dist, check=True)
    committed = set(run("git", "-C", REPO, "ls-tree", "-r", "--name-only", "HEAD").splitlines())

    assert files_of(rpm_source) == committed
    assert (rpm_source / "rpm/multinic.spec").exists()


@pytest.mark.parametrize("kind", ["deb", "rpm"])
def test_packaged_programs_run_and_tell_their_version(request, kind):
    roots = request.getfixturevalue(f"{kind}s")
    for binary in ("usr/sbin/multinicd", "usr/bin/multinicctl"):
        assert run(roots["multinicd"] / binary, "--version").split() == [Path(binary).name, VERSION]
    assert run(roots["multinic-bridge"] / "usr/bin/multinic-bridge", "--version").split() == \
        ["multinic-bridge", VERSION]


def test_lintian_reports_no_error(deb_dist):
    changes = deb_dist / f"multinic_{VERSION}_{arch()}.changes"

    p = subprocess.run(["lintian", "--pedantic", changes], capture_output=True, text=True,
                       timeout=300)

    report = p.stdout + p.stderr
    # Exit status 1: lintian found an error (its default --fail-on=error); 2: it did not run.
    assert p.returncode == 0 and not re.findall(r"^E: .*$", report, re.M), report


def test_rpmlint_reports_no_error(rpm_dist, rpm_source):
    rpms = sorted(rpm_dist.glob("*.rpm"))
    assert len(rpms) == 2, rpms

    p = subprocess.run(["rpmlint", "-c", REPO / "rpm/rpmlint.toml", *rpms,
                        rpm_source / "rpm/multinic.spec"], capture_output=True, text=True,
                       timeout=300)

    report = p.stdout + p.stderr
    errors = re.findall(r"^\S+: E: .*$", report, re.M)
    summary = re.search(r"(\d+) packages and (\d+) specfiles checked; (\d+) errors", report)
    assert summary, report
    assert summary.groups() == ("2", "1", "0") and not errors and p.returncode == 0, report


def test_man_pages_render_without_warnings(debs):
    pages = [debs["multinicd"] / f for f in MULTINICD_FILES if f.startswith("usr/share/man/")]
    pages += [debs["multinic-bridge"] / f for f in BRIDGE_FILES if f.startswith("usr/share/man/")]
    for page in pages:
        source = gzip.decompress(page.read_bytes())
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=source,
                           capture_output=True)
        assert p.returncode == 0 and not p.stderr, f"{page.name}: {p.stderr.decode()}"
        assert b".SH NAME" in source, page.name


def test_unit_exposure_is_at_most_two(debs):
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                        debs["multinicd"] / UNIT], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for multinicd\.service: (\d+\.\d+)", p.stdout)
    assert m, f"no exposure figure:\n{p.stdout}\n{p.stderr}"
    assert float(m.group(1)) <= EXPOSURE_MAX, p.stdout


def test_unit_starts_after_and_stops_before_the_hosts_network_stack(debs):
    """multinicd applies its kept spec when it starts: after systemd-networkd and NetworkManager
    have started (both are ordered before network.target, as the host's units say), so that it
    does not race them over the same NICs, and at shutdown it stops before them. It holds up
    neither the network nor itself on the network coming online."""
    unit = debs["multinicd"] / UNIT
    words = {key: " ".join(unit_settings(unit, key)).split()
             for key in ("After", "Before", "Wants", "Requires", "WantedBy", "RequiredBy")}
    checked = []
    for host in ("systemd-networkd.service", "NetworkManager.service"):
        path = Path("/lib/systemd/system") / host
        if path.exists():
            assert "network.target" in " ".join(unit_settings(path, "Before")).split(), host
            checked.append(host)

    assert checked, "neither systemd-networkd nor NetworkManager is installed here"
    assert "network.target" in words["After"]
    assert not {"network-pre.target", "network-online.target"} & \
        {w for key, ws in words.items() if key != "After" for w in ws}, words
    assert "network-online.target" not in words["After"]


def test_unit_passes_systemd_analyze_verify(debs, tmp_path):
    """verify needs the units the unit names (dbus.socket, multi-user.target) and the binary in
    one root: the host's units and the package's files, in a scratch root."""
    root = tmp_path / "root"
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    run("cp", "-a", "/lib/systemd/system/.", units)
    run("cp", "-a", f"{debs['multinicd']}/.", root)
    if not (units / "dbus.socket").exists():
        pytest.skip("the host has no dbus.socket unit to verify against")

    p = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no",
                        "--generators=no", "multinicd.service"], capture_output=True, text=True)

    # verify exits 0 on settings it ignores, but says so.
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), p.stdout + p.stderr


def test_sysusers_file_creates_the_bridge_system_user(debs, tmp_path):
    root = tmp_path / "root"
    run("cp", "-a", f"{debs['multinicd']}/.", root)
    (root / "etc").mkdir()

    run("systemd-sysusers", f"--root={root}", "multinic-bridge.conf")

    users = {line.split(":")[0]: line.split(":") for line in
             (root / "etc/passwd").read_text().splitlines()}
    user = users["multinic-bridge"]
    assert 0 < int(user[2]) < 1000, "not a system uid"
    assert user[6] in ("/usr/sbin/nologin", "/sbin/nologin")


def test_dbus_activation_file_names_the_bus_name_and_the_unit(debs, tmp_path):
    root = debs["multinicd"]
    services = root / "usr/share/dbus-1/system-services"
    keys = dict(line.split("=", 1) for line in
                (services / "io.multinic.Agent1.service").read_text().splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["Name"] == "io.multinic.Agent1"
    assert keys["SystemdService"] == "multinicd.service"
    assert keys["User"] == "root"
    assert re.search(r"^BusName=io\.multinic\.Agent1$", (root / UNIT).read_text(), re.M)
    # A bus that reads the package's policy and activation directory lists the name.
    extra = tmp_path / "servicedir.conf"
    extra.write_text(f"<busconfig><servicedir>{services}</servicedir></busconfig>\n")
    bus = Bus(policies=(root / "usr/share/dbus-1/system.d/io.multinic.Agent1.conf", extra))
    try:
        names = bus.conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ListActivatableNames", "", ())
    finally:
        bus.close()
    assert "io.multinic.Agent1" in names


# Runs a program under a seccomp filter: python3 SCRIPT FILTER.json PROGRAM ARGS...; the filter
# is {"errno": N, "syscalls": [names], "families": [numbers]}. Loaded after setpriv's
# --no-new-privs, as systemd loads the unit's filter before it executes the daemon.
SECCOMP_EXEC = r"""
import json, os, sys
import seccomp
spec = json.load(open(sys.argv[1]))
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(spec["errno"]))
for name in spec["syscalls"]:
    if name == "socket":
        continue
    try:
        f.add_rule(seccomp.ALLOW, name)
    except (RuntimeError, ValueError):
        pass  # not a system call of this architecture
for family in spec["families"]:
    f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""
ADDRESS_FAMILIES = {"AF_UNIX": 1, "AF_NETLINK": 16, "AF_INET": 2, "AF_INET6": 10, "AF_PACKET": 17}


def unit_settings(path, key):
    """Every value of key in the unit file, in order."""
    return re.findall(rf"^{key}=(.*)$", path.read_text(), re.M)


def syscall_groups():
    """{"@group": [names and @groups]} as systemd-analyze knows them."""
    groups, current = {}, None
    for line in run("systemd-analyze", "syscall-filter", "--no-pager").splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(items, groups):
    out = set()
    for item in items:
        out |= expand(groups[item], groups) if item.startswith("@") else {item}
    return out


def seccomp_filter(unit):
    """The unit's SystemCallFilter= (an allow list, then ~ deny lists), SystemCallErrorNumber=
    and RestrictAddressFamilies=, as one filter for SECCOMP_EXEC."""
    groups = syscall_groups()
    allowed = None
    for value in unit_settings(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        assert deny or allowed is None, "one allow list, then deny lists"
        allowed = allowed - names if deny else names | expand(["@default"], groups)
    (errno_name,) = unit_settings(unit, "SystemCallErrorNumber")
    (families,) = unit_settings(unit, "RestrictAddressFamilies")
    return {"errno": getattr(__import__("errno"), errno_name), "syscalls": sorted(allowed),
            "families": [ADDRESS_FAMILIES[f] for f in families.split()]}


# backend: (os-release, directories of the root, the NICs' files)
SANDBOX_BACKENDS = {
    "netplan": (DEBIAN_OS_RELEASE, ["etc/netplan/"],
                [f"etc/netplan/90-multinic-multinic{i}.yaml" for i in (0, 1)]),
    "networkmanager": ("ID=rocky\nID_LIKE=\"rhel centos fedora\"\n",
                       ["etc/NetworkManager/system-connections/", "etc/systemd/network/"],
                       [f"etc/NetworkManager/system-connections/multinic-multinic{i}.nmconnection"
                        for i in (0, 1)] +
                       [f"etc/systemd/network/10-multinic-multinic{i}.link" for i in (0, 1)]),
}


@pytest.mark.parametrize("backend", SANDBOX_BACKENDS)
def test_packaged_daemon_works_inside_the_units_capabilities_and_syscall_filter(
        request, debs, node, bus, tmp_path, backend):
    """What multinicd.service leaves the daemon (CapabilityBoundingSet=CAP_NET_ADMIN,
    NoNewPrivileges, its SystemCallFilter= and RestrictAddressFamilies= as a seccomp filter, and
    ProtectSystem=strict with its ReadWritePaths= and StateDirectory=, here on the scratch root) is
    enough for the whole Apply: renames, MTU, addresses, rules, routes, the per-NIC sysctls
    (netlink, not /proc/sys) and the persistence files, the .link files with the NIC's driver
    (an ethtool ioctl); and for Remove."""
    pytest.importorskip("seccomp", reason="python3-seccomp is not installed")
    unit = debs["multinicd"] / UNIT
    assert unit_settings(unit, "CapabilityBoundingSet") == ["CAP_NET_ADMIN"]
    assert unit_settings(unit, "NoNewPrivileges") == ["yes"]
    spec_file = tmp_path / "filter.json"
    spec_file.write_text(json.dumps(seccomp_filter(unit)))
    helper = tmp_path / "seccomp-exec.py"
    helper.write_text(SECCOMP_EXEC)
    os_release, directories, nic_files = SANDBOX_BACKENDS[backend]
    root = make_root(tmp_path / "root", os_release=os_release,
                     files={d: "" for d in directories + ["etc/sysctl.d/"]})
    (root / "var/lib/multinic").mkdir(parents=True, mode=0o700)
    writable = [root / p.lstrip("-/") for v in unit_settings(unit, "ReadWritePaths")
                for p in v.split()]
    writable += [root / "var/lib" / d for d in unit_settings(unit, "StateDirectory")]
    binds = "".join(f"mount --bind {d} {d}; " for d in writable if d.is_dir())
    # The root read-only but for the unit's writable directories, in a mount namespace of the
    # daemon's own; then the capabilities, and the seccomp filter.
    wrapper = tmp_path / "multinicd-sandboxed"
    wrapper.write_text(
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private sh -ec '"
        f"{binds}mount --rbind {root} {root}; mount -o remount,bind,ro {root}; "
        "exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,+net_admin -- "
        f"/usr/bin/python3 {helper} {spec_file} {debs['multinicd'] / 'usr/sbin/multinicd'} "
        "\"$@\"' sh \"$@\"\n")
    wrapper.chmod(0o755)
    daemon = Daemon(debs["multinicd"], node, bus, root)
    daemon.binary = wrapper
    request.node.multinicd = [daemon]
    add_case01_nics(node)
    spec = case01_spec()
    try:
        daemon.start()
        status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
        fields = dict(re.findall(r"^(\w+):\s*(.*)$", status, re.M))
        assert int(fields["CapEff"], 16) == 1 << CAP_NET_ADMIN, fields
        assert int(fields["CapBnd"], 16) == 1 << CAP_NET_ADMIN, fields
        assert fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2", fields
        probe = subprocess.run(["nsenter", "-t", str(daemon.proc.pid), "-m", "touch",
                                root / "etc/probe"], capture_output=True, text=True)
        assert probe.returncode != 0 and "Read-only" in probe.stderr, probe

        state, results = daemon.apply(spec)

        assert state == "Configured", results
        for entry in spec:
            assert_nic_configured(node, entry)
        assert set(nic_files) | {"etc/sysctl.d/90-multinic.conf"} <= set(daemon.files())
        for link in (f for f in nic_files if f.endswith(".link")):
            assert "\nDriver=veth\n" in (root / link).read_text(), link

        released = daemon.remove()

        assert [r["state"] for r in released] == ["removed", "removed"], released
        for entry, original in zip(spec, ("ens4", "ens5")):
            assert_nic_released(node, entry["macAddress"], original, entry)
        assert not [f for f in daemon.files() if f.startswith("etc/")]
    finally:
        daemon.stop()
