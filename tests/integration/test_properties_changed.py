"""PropertiesChanged follows what a call changed; a no-op Apply only moves LastApply."""
import json
import subprocess
import time

from conftest import add_case01_nics, case01_spec


class SignalRecorder:
    """busctl monitor on the private bus, keeping multinicd's PropertiesChanged signals."""

    def __init__(self, bus):
        self.proc = subprocess.Popen(["busctl", f"--address={bus.address}", "--json=short",
                                      "monitor", "io.multinic.Agent1"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # busctl says so on stderr once the bus has made it a monitor.
        ready = self.proc.stderr.readline()
        assert "Monitoring" in ready, ready + self.proc.stderr.read()

    def changed(self, count, timeout=5):
        """The changed-property names of the first count signals, waiting for them."""
        deadline = time.monotonic() + timeout
        signals = []
        while len(signals) < count and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if msg.get("type") == "signal" and msg.get("member") == "PropertiesChanged":
                signals.append(sorted(msg["payload"]["data"][1].keys()))
        assert signals or self.proc.poll() is None, self.proc.stderr.read()
        return signals

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)


def test_apply_signals_changed_properties_and_a_noop_only_last_apply(node, daemon):
    add_case01_nics(node)
    rec = SignalRecorder(daemon.bus)
    try:
        daemon.apply(case01_spec())
        daemon.apply(case01_spec())

        first, second = rec.changed(2)
    finally:
        rec.close()

    assert first == ["Interfaces", "LastApply", "State"]
    assert second == ["LastApply"]
