"""D-Bus client helpers for multinicd: exact argument types, plain results.

Also a tiny command-line client, run as another user to test authorization:
    python3 mnbus.py ADDRESS METHOD JSON_ARGS [--interactive]
prints {"ok": reply} or {"error": name, "message": text}, with "pid" and "sender" (its bus name).
"""
import json
import os
import sys

import dbus
import dbus.lowlevel

BUS_NAME = "io.multinic.Agent1"
OBJECT_PATH = "/io/multinic/Agent1"
INTERFACE = "io.multinic.Agent1"
ERROR = "io.multinic.Agent1.Error."
PROPERTIES = "org.freedesktop.DBus.Properties"
SIGNATURES = {"Apply": "aa{sv}a{sv}", "Plan": "aa{sv}a{sv}", "Remove": "a{sv}"}
CALL_TIMEOUT = 60


def is_dbus_typed(value):
    return type(value).__module__.startswith("dbus")


def variant_value(value):
    """A plain Python value as the D-Bus type the API wants; dbus-typed values pass as they are."""
    if is_dbus_typed(value):
        return value
    if isinstance(value, bool):
        return dbus.Boolean(value)
    if isinstance(value, int):
        return dbus.UInt32(value)
    if isinstance(value, str):
        return dbus.String(value)
    raise TypeError(f"no D-Bus mapping for {value!r}; pass a dbus-typed value")


def to_dict(d):
    if is_dbus_typed(d):
        return d
    return dbus.Dictionary({dbus.String(k): variant_value(v) for k, v in d.items()}, signature="sv")


def to_dict_array(entries):
    if is_dbus_typed(entries):
        return entries
    return dbus.Array([to_dict(e) for e in entries], signature="a{sv}")


def plain(value):
    """dbus-python values as plain Python ones, for comparisons and JSON."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


class Client:
    def __init__(self, address):
        self.conn = dbus.bus.BusConnection(address)
        self.proxy = self.conn.get_object(BUS_NAME, OBJECT_PATH, introspect=False)

    def call(self, method, *args, interactive=False):
        """Calls method with args converted to the API's types; returns the raw reply.
        interactive: the call allows interactive authorization (ALLOW_INTERACTIVE_AUTHORIZATION)."""
        if method in ("Apply", "Plan"):
            args = (to_dict_array(args[0]), to_dict(args[1]))
        elif method == "Remove":
            args = (to_dict(args[0]),)
        if interactive:
            return self._call_interactive(method, args)
        fn = self.proxy.get_dbus_method(method, INTERFACE)
        return fn(*args, signature=SIGNATURES[method], timeout=CALL_TIMEOUT)

    def _call_interactive(self, method, args):
        # dbus-python's proxies cannot set the flag; a message of our own can.
        msg = dbus.lowlevel.MethodCallMessage(BUS_NAME, OBJECT_PATH, INTERFACE, method)
        msg.append(*args, signature=SIGNATURES[method])
        msg.set_allow_interactive_authorization(True)
        values = self.conn.send_message_with_reply_and_block(msg, CALL_TIMEOUT).get_args_list()
        return values[0] if len(values) == 1 else tuple(values)

    def prop(self, name):
        return self.proxy.Get(INTERFACE, name, dbus_interface=PROPERTIES, timeout=CALL_TIMEOUT)

    def close(self):
        self.conn.close()


def main(argv):
    address, method, args = argv[1], argv[2], json.loads(argv[3])
    interactive = "--interactive" in argv[4:]
    client = Client(address)
    caller = {"pid": os.getpid(), "sender": str(client.conn.get_unique_name())}
    try:
        if method == "Get":
            reply = client.prop(*args)
        else:
            reply = client.call(method, *args, interactive=interactive)
        print(json.dumps({"ok": plain(reply), **caller}))
    except dbus.exceptions.DBusException as e:
        print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message(), **caller}))


if __name__ == "__main__":
    main(sys.argv)
