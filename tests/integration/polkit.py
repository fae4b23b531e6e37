"""A real polkitd for the authorization tests, on a private bus, with multinic's shipped policy
and rules and users of the tests' own, none of it written into the host's /usr or /etc.

polkitd and the bus's dbus-daemon each run in a mount namespace of their own in which bind mounts
show them, instead of the host's files:
- /usr/share/polkit-1/actions: io.multinic.agent1.policy only;
- /usr/share/polkit-1/rules.d: 50-multinic.rules only (as shipped, byte for byte);
- /etc/polkit-1/rules.d: the test's site rules (empty unless a test gives some);
- /etc/passwd and /etc/group: the host's, plus the users below.
polkit's rules see subject.user as getpwuid() in polkitd says, and dbus-daemon refuses a
connection whose uid it cannot look up, so both need the users; the caller itself runs as a bare
uid (setpriv), and multinicd only ever sees numbers.
"""
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from conftest import REPO, Bus, poll

POLKITD = "/usr/lib/polkit-1/polkitd"
POLKIT_NAME = "org.freedesktop.PolicyKit1"
POLKIT_BUS_POLICY = Path("/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf")
AGENT_BUS_POLICY = REPO / "units" / "io.multinic.Agent1.conf"
SHIPPED_POLICY = REPO / "polkit" / "io.multinic.agent1.policy"
SHIPPED_RULES = REPO / "polkit" / "50-multinic.rules"
ACTIONS = ("io.multinic.agent1.apply", "io.multinic.agent1.remove")

# Users the tests add (in the namespaces only): the bridge's user, named as the shipped rule
# names it, and an operator whom a site rule asks to authenticate.
TEST_USERS = ("multinic-bridge", "multinic-operator")

# What the shipped defaults (auth_admin_keep) give a caller in an active local session. Sessions
# come from logind, which the tests do not have, so a site rule stands in for one.
OPERATOR_AUTHENTICATES = """// Test only: multinic-operator must authenticate as an administrator.
polkit.addRule(function(action, subject) {
        if (action.id.indexOf("io.multinic.agent1.") == 0 && subject.user == "multinic-operator")
                return polkit.Result.AUTH_ADMIN_KEEP;
});
"""

# Bind mounts (source, target pairs up to --), then exec the rest: the pid stays the program's.
BIND_THEN_EXEC = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; '
                  'shift; exec "$@"')


def in_mount_namespace(binds):
    """A command prefix that runs a program in a private mount namespace with binds applied."""
    pairs = [str(p) for bind in binds for p in bind]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", BIND_THEN_EXEC, "sh",
            *pairs, "--"]


def free_ids(count, top=64999):
    """count ids, highest first from top down, that are neither a user's nor a group's uid/gid
    on the host."""
    used = {u.pw_uid for u in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    ids = [i for i in range(top, top - 1000, -1) if i not in used]
    return ids[:count]


class Polkit:
    """A private bus with polkitd on it; polkit.users maps TEST_USERS to their uids."""

    def __init__(self, site_rules=None):
        self.dir = Path(tempfile.mkdtemp(prefix="multinic-polkit-"))
        self.users = dict(zip(TEST_USERS, free_ids(len(TEST_USERS))))
        self.site_rules = site_rules or {}  # file name -> text, for /etc/polkit-1/rules.d
        self.bus = None
        self.proc = None
        self.binds = []
        self.logfile = self.dir / "polkitd.log"

    def _user_db(self):
        passwd, group = self.dir / "passwd", self.dir / "group"
        extra_users = "".join(f"{n}:x:{i}:{i}:{n}:/nonexistent:/usr/sbin/nologin\n"
                              for n, i in self.users.items())
        extra_groups = "".join(f"{n}:x:{i}:\n" for n, i in self.users.items())
        passwd.write_text(Path("/etc/passwd").read_text() + extra_users)
        group.write_text(Path("/etc/group").read_text() + extra_groups)
        return [(passwd, "/etc/passwd"), (group, "/etc/group")]

    def _directory(self, name, files):
        """A directory polkitd (which drops to its own user) can read."""
        d = self.dir / name
        d.mkdir(mode=0o755)
        os.chmod(d, 0o755)
        for file_name, text in files.items():
            (d / file_name).write_text(text)
            os.chmod(d / file_name, 0o644)
        return d

    def start(self):
        users = self._user_db()
        for path, _ in users:
            os.chmod(path, 0o644)
        self.bus = Bus(policies=(AGENT_BUS_POLICY, POLKIT_BUS_POLICY),
                       wrap=in_mount_namespace(users))
        self.binds = users + [
            (self._directory("actions", {SHIPPED_POLICY.name: SHIPPED_POLICY.read_text()}),
             "/usr/share/polkit-1/actions"),
            (self._directory("rules", {SHIPPED_RULES.name: SHIPPED_RULES.read_text()}),
             "/usr/share/polkit-1/rules.d"),
            (self._directory("site-rules", self.site_rules), "/etc/polkit-1/rules.d"),
        ]
        self.start_polkitd()

    def start_polkitd(self):
        # Without --no-debug polkitd logs to stderr (with it, to syslog): the log is the test's.
        with open(self.logfile, "a") as log:
            self.proc = subprocess.Popen([*in_mount_namespace(self.binds), POLKITD], stdout=log,
                                         stderr=subprocess.STDOUT, cwd="/",
                                         env=dict(os.environ,
                                                  DBUS_SYSTEM_BUS_ADDRESS=self.bus.address))

        def owned():
            assert self.proc.poll() is None, f"polkitd exited:\n{self.log()}"
            return self.bus.conn.name_has_owner(POLKIT_NAME)
        poll(owned, timeout=10, interval=0.02, what=f"polkitd to own {POLKIT_NAME}")

    def stop_polkitd(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test paused it
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.bus:
            poll(lambda: not self.bus.conn.name_has_owner(POLKIT_NAME),
                 what=f"{POLKIT_NAME} to lose its owner")

    def pause(self):
        """Stops polkitd (SIGSTOP): calls to it wait until resume()."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log(self):
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def close(self):
        self.stop_polkitd()
        if self.bus:
            self.bus.close()
        shutil.rmtree(self.dir, ignore_errors=True)
