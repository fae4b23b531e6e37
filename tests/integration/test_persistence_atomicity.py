"""Readers of the daemon's files see the old version or the new one, whole and with the final
mode, never a partial file, a missing one or a wider mode, however often the spec changes."""
import contextlib

import pytest

from conftest import case01_spec
from persistence import (MARKER, FileWatcher, keyfile_path, link_path, netplan_path, netplan_root,
                         rocky_root)

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
