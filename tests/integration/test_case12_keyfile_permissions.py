"""Field case 12: under umask 022, a stale keyfile 0644 is replaced by one that is root's alone
from the moment it appears, and NetworkManager (which ignores keyfiles others can read or own)
loads it."""
import os

from conftest import NOBODY, assert_nic_configured, case01_spec, poll
from persistence import (KEYFILE_DIR, MARKER, FileWatcher, keyfile_path, parse_unit, rocky_root,
                         sections)

KEYFILE = keyfile_path("multinic0")
NAME = KEYFILE.rsplit("/", 1)[1]
STALE = f"""{MARKER}
[connection]
id=multinic-multinic0
uuid=00000000-0000-4000-8000-000000000000
type=ethernet
interface-name=multinic0

[ethernet]
mac-address=fa:16:3e:00:00:01

[ipv4]
method=manual
address1=10.1.0.99/24
""".encode()


def start(node, start_daemon, stale=STALE):
    daemon = start_daemon(umask=0o022, **rocky_root(**{KEYFILE: (stale, 0o644)}))
    with open(f"/proc/{daemon.proc.pid}/status") as f:
        assert "Umask:\t0022\n" in f.read()
    node.nic("ens4", "fa:16:3e:00:00:01")
    return daemon


def test_stale_keyfile_is_replaced_root_only_from_the_moment_it_appears(node, start_daemon,
                                                                         network_manager):
    daemon = start(node, start_daemon)
    spec = case01_spec()[:1]

    with FileWatcher(daemon.root / KEYFILE_DIR) as watcher:
        state, results = daemon.apply(spec)

    assert state == "Configured", results
    assert_nic_configured(node, spec[0])
    path = daemon.root / KEYFILE
    st = path.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o600", 0, 0)
    final = path.read_bytes()
    assert final != STALE and final.startswith(MARKER.encode() + b"\n")
    # What any reader could have seen meanwhile: the stale file as it was, or files of mode 0600
    # (the temporary one included), never the new content readable by others.
    wrong = {(name, oct(mode), uid) for name, mode, uid, gid, data in watcher.seen
             if mode is not None and data != STALE and (mode, uid, gid) != (0o600, 0, 0)}
    assert not wrong, wrong
    assert (NAME, 0o600, 0, 0, final) in watcher.seen, f"{watcher.rounds} rounds saw no change"
    assert not [s for s in watcher.seen if s[0] == NAME and s[1] is None], "the keyfile vanished"
    assert set(p.name for p in path.parent.iterdir()) == {NAME}

    nm = network_manager(node.ns, daemon.root / KEYFILE_DIR)
    nm.wait_profiles(["multinic-multinic0"])
    profile = nm.show("multinic-multinic0")
    assert profile["802-3-ethernet.mac-address"] == "FA:16:3E:00:00:01"
    assert profile["ipv4.addresses"] == "10.1.0.11/24"


def test_keyfile_with_the_right_content_but_mode_0644_is_made_root_only(node, start_daemon,
                                                                         network_manager):
    daemon = start(node, start_daemon)
    spec = case01_spec()[:1]
    daemon.apply(spec)
    keyfile = daemon.root / KEYFILE
    current = keyfile.read_bytes()
    daemon.remove()
    daemon.stop()
    # What the daemon writes, loosened by someone while it was not running.
    keyfile.write_bytes(current)
    keyfile.chmod(0o644)
    daemon.start()

    state, results = daemon.apply(spec)

    assert state == "Configured", results
    st = keyfile.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o600", 0, 0)
    assert keyfile.read_bytes() == current
    nm = network_manager(node.ns, daemon.root / KEYFILE_DIR)
    [uuid] = [c["uuid"] for c in sections(parse_unit(current.decode()), "connection")]
    assert nm.wait_profiles(["multinic-multinic0"]) == {"multinic-multinic0": uuid}


def test_keyfile_with_the_right_content_and_mode_but_another_owner_is_given_back_to_root(
        node, start_daemon, network_manager):
    """NetworkManager ignores a keyfile that root does not own, however right its content and
    mode: a chown is a change multinicd must undo like a chmod."""
    daemon = start(node, start_daemon)
    spec = case01_spec()[:1]
    daemon.apply(spec)
    keyfile = daemon.root / KEYFILE
    current = keyfile.read_bytes()
    daemon.stop()
    os.chown(keyfile, NOBODY, NOBODY)
    nm = network_manager(node.ns, daemon.root / KEYFILE_DIR)
    poll(lambda: f"File owner ({NOBODY}) is insecure" in nm.log(), timeout=15,
         what=f"NetworkManager to refuse the keyfile of uid {NOBODY}")
    assert nm.profiles() == {}

    daemon.start()
    state, results = daemon.apply(spec)

    assert state == "Configured", results
    st = keyfile.stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o600", 0, 0)
    assert keyfile.read_bytes() == current
    nm.reload()
    [uuid] = [c["uuid"] for c in sections(parse_unit(current.decode()), "connection")]
    assert nm.wait_profiles(["multinic-multinic0"]) == {"multinic-multinic0": uuid}
