"""Readers of the daemon's files see the old version or the new one, whole and with the final
mode, never a partial file, a missing one or a wider mode, however often the spec changes; and
every write and deletion is fsynced, with its directory, before the next one."""
import contextlib
import os
import re
import shutil

import pytest

from conftest import add_case01_nics, case01_spec, poll
from persistence import (MARKER, SYSCTL_FILE, FileWatcher, keyfile_path, link_path, netplan_path,
                         netplan_root, rocky_root)

APPLIES = 100
# backend: (root files, {watched file: (mode, its last line)})
BACKENDS = {
    "netplan": (netplan_root, {netplan_path("multinic0"): (0o600, "          priority: 1000")}),
    "networkmanager": (rocky_root, {keyfile_path("multinic0"): (0o600, "method=disabled"),
                                    link_path("multinic0"): (0o644, None)}),
}


def spec_with_mtu(mtu):
    return [dict(case01_spec()[0], mtu=mtu)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_readers_never_see_a_partial_file_or_a_wider_mode(node, start_daemon, backend):
    root_files, watched = BACKENDS[backend]
    daemon = start_daemon(**root_files())
    node.nic("ens4", "fa:16:3e:00:00:01")
    specs = [spec_with_mtu(1450), spec_with_mtu(1400)]
    versions = {rel: set() for rel in watched}
    for spec in specs:
        daemon.apply(spec)
        for rel in watched:
            versions[rel].add((daemon.root / rel).read_bytes())
    assert all(len(v) == 2 for v in versions.values()), "the two specs give the same files"

    with contextlib.ExitStack() as stack:
        watchers = [stack.enter_context(FileWatcher((daemon.root / rel).parent,
                                                    [rel.rsplit("/", 1)[1]]))
                    for rel in watched]
        for i in range(APPLIES):
            state, results = daemon.apply(specs[i % 2])
            assert (state, results[0]["state"]) == ("Configured", "configured"), results

    for (rel, (mode, last_line)), w in zip(watched.items(), watchers):
        bad = []
        for name, seen_mode, uid, gid, data in w.seen:
            text = (data or b"").decode(errors="replace")
            if seen_mode is None:
                bad.append(f"{name} missing")
            elif (seen_mode, uid, gid) != (mode, 0, 0):
                bad.append(f"{name} mode {oct(seen_mode)} owner {uid}:{gid}")
            elif not text.startswith(MARKER + "\n") or \
                    (last_line and not text.endswith(f"\n{last_line}\n")):
                bad.append(f"{name} partial: {text!r}")
            elif data not in versions[rel]:
                bad.append(f"{name} neither version: {text!r}")
        assert not bad, f"{len(bad)} of {len(w.seen)} reads: {bad[:5]}"
        seen_versions = {data for _, _, _, _, data in w.seen}
        assert seen_versions == versions[rel], f"{rel}: {w.rounds} reads saw no change"


# --- durability, seen in the system calls ---------------------------------------------------------

STRACE = shutil.which("strace")
SYSCALL = re.compile(r"^\d+ +(\w+)\((.*)\) += (-?\d+)")
FD = re.compile(r"(-?\d+)<([^>]*)>")  # what strace -y prints for a descriptor: 7</path>


def syscalls(log, root):
    """(name, paths, creates, ok) of each call on a path under root, in order: name with rename*
    and unlink* as rename and unlink; paths the path arguments (for openat the opened one, for
    fsync the descriptor's, for unlinkat the one it names); creates whether it has O_CREAT."""
    out = []
    for line in log.splitlines():
        m = SYSCALL.match(line)
        if not m:
            continue
        name, args, rc = m.groups()
        paths = re.findall(r'"([^"]*)"', args)
        if name == "unlinkat":  # unlinkat(3</dir>, "name", 0)
            paths = [f"{FD.match(args).group(2)}/{paths[0]}"]
        elif name in ("fsync", "fdatasync"):
            paths = [FD.match(args).group(2)]
        if not any(p.startswith(str(root)) for p in paths):
            continue
        name = re.sub(r"^(rename|unlink)\w*$", r"\1", name)
        out.append((name, paths, "O_CREAT" in args, int(rc) >= 0))
    return out


def is_state_file(path):
    return path.endswith("/var/lib/multinic/state.json")


def check_synced(calls):
    """Each rename follows an fsync of the new file and is followed by an fsync of its directory
    before anything else is written or deleted; each unlink is followed by an fsync of its
    directory in the same way. Returns the list of what breaks that. The directory of the state
    file is left to check_state_synced_before_files()."""
    bad = []
    changing = ("rename", "unlink")
    for i, (name, paths, _, ok) in enumerate(calls):
        if not ok or name not in changing:
            continue
        directory = os.path.dirname(paths[-1])
        if name == "rename":
            synced = [k for k, c in enumerate(calls[:i]) if c[0] == "fsync" and c[1] == [paths[0]]]
            created = [k for k, c in enumerate(calls[:i]) if c[0] == "openat" and c[2]
                       and c[1][0] == paths[0]]
            if not synced or not created or synced[-1] < created[-1]:
                bad.append(f"{paths[0]} renamed without an fsync since it was created")
        if is_state_file(paths[-1]):
            continue
        for later in calls[i + 1:]:
            if later[0] == "fsync" and later[1] == [directory]:
                break
            if later[3] and (later[0] in changing and os.path.dirname(later[1][-1]) != directory
                             or later[0] == "openat" and later[2]):
                bad.append(f"{name} of {paths[-1]}: {later[0]} of {later[1][-1]} before an "
                           "fsync of the directory")
                break
        else:
            bad.append(f"{name} of {paths[-1]}: no fsync of the directory after it")
    return bad


def check_state_synced_before_files(calls):
    """The state file may be renamed over without an fsync of its directory (what an Apply is
    about to do to the kernel, whose state a power loss takes too), but the directory is fsynced
    before any persistence file is created or deleted after that. Returns what breaks that."""
    bad, unsynced = [], None
    for name, paths, creates, ok in calls:
        if not ok:
            continue
        if name == "rename" and is_state_file(paths[-1]):
            unsynced = os.path.dirname(paths[-1])
        elif name == "fsync" and paths[0] == unsynced:
            unsynced = None
        elif unsynced and (name == "unlink" or name == "openat" and creates) and \
                "/var/lib/multinic/" not in paths[-1]:
            bad.append(f"{name} of {paths[-1]} while {unsynced} was not synced")
            unsynced = None
    return bad


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
def test_writes_and_deletions_reach_the_disk_in_order(node, start_daemon, tmp_path):
    """What strace sees multinicd do: for each file, a temporary one created, fsynced and renamed
    over it, then the directory fsynced; for each deletion (a released NIC's files, a NIC's files
    taken back when one of them cannot be written) the directory fsynced; the state file synced
    before any of them."""
    log = tmp_path / "strace.log"
    # LeakSanitizer cannot run under ptrace; every other test of that build checks for leaks.
    daemon = start_daemon(env={"ASAN_OPTIONS": "detect_leaks=0"}, **rocky_root())
    daemon.stop()
    # -D: strace runs as a grandchild, so multinicd keeps the pid the fixture knows.
    daemon.wrapper = [STRACE, "-D", "-q", "-f", "-y", "-s", "4096", "-o", log, "-e",
                      "trace=openat,rename,renameat,renameat2,unlink,unlinkat,fsync,fdatasync"]
    daemon.start()
    pid = daemon.proc.pid
    add_case01_nics(node)
    spec = case01_spec()

    daemon.apply(spec)  # writes
    daemon.apply(spec[:1])  # deletes multinic1's files
    (daemon.root / link_path("multinic1")).write_text("[Match]\nOriginalName=*\n")
    state, _ = daemon.apply(spec)  # writes multinic1's keyfile, and deletes it again
    daemon.stop()

    assert state == "Failed"
    poll(lambda: re.search(rf"^{pid} +\+\+\+ exited with 0 \+\+\+$", log.read_text(), re.M),
         what="strace to finish")
    calls = syscalls(log.read_text(), daemon.root)
    done = {(name, paths[-1]) for name, paths, _, ok in calls if ok}
    keyfile1 = str(daemon.root / keyfile_path("multinic1"))
    for rel in (keyfile_path("multinic0"), link_path("multinic0"), keyfile_path("multinic1"),
                link_path("multinic1"), SYSCTL_FILE):
        assert ("rename", str(daemon.root / rel)) in done, rel
    assert ("unlink", str(daemon.root / link_path("multinic1"))) in done
    assert [name for name, paths, _, ok in calls if ok and paths[-1] == keyfile1
            and name in ("rename", "unlink")] == ["rename", "unlink", "rename", "unlink"]
    assert check_synced(calls) == []
    assert check_state_synced_before_files(calls) == []
    # Each Apply that changes something renames the state file twice: the intent before the
    # first change, unsynced, and the outcome after the answer, synced.
    state = [c for c in calls if c[0] == "rename" and c[3] and is_state_file(c[1][-1])]
    assert len(state) == 6, state
