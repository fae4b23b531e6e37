"""The MultiNicNodeConfig CRD (crds/multinicnodeconfigs.yaml) and its samples.

No API server runs here, so the schema is checked the way one would apply it:
- the OpenAPI part through python3-jsonschema (Draft 7), with the `x-kubernetes-*` keys left out
  of the translated schema, list-type map keys checked for uniqueness as the API server does,
  patterns matched with Go RE2's meaning of '$' (the end of the text), and the formats int32,
  int64 and date-time checked;
- the structural-schema rules by a walk over the schema;
- the CEL rules (`x-kubernetes-validations`): the CRD's own rule text, at every level of the
  schema that declares rules, is evaluated by a real CEL implementation (tests/cel/eval.mjs on
  Node.js, @bufbuild/cel pinned in tests/cel/package-lock.json, installed by `npm ci` on first
  use; skipped when `node` is missing) on the samples, the good objects and the objects that a
  rule is to refuse: every good object passes every rule, every refused one fails exactly the
  expected rule, named by its message. Each rule's text is also pinned and paired with a Python
  re-implementation, which must agree with the real evaluation on every object (and stands in
  for it where Node.js is missing); and the CEL tests are shown to fail when a rule's text is
  broken.

Consistency with multinicd: `multinicctl plan -f -` parses and validates a document with the
daemon's own code (common/spec.c) before it connects to the bus; pointed at a bus socket that
does not exist it exits 2 on an invalid spec and 1 (cannot connect) on a valid one. Every
refusal in the tables below is checked against it, and so are the documented differences.
No root, no network, no daemon.
"""
import copy
import datetime
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import BUILDS, REPO

# MULTINIC_CRD: another CRD file to check, e.g. a scratch copy with a rule changed on purpose.
CRD_PATH = Path(os.environ.get("MULTINIC_CRD", REPO / "crds" / "multinicnodeconfigs.yaml"))
SAMPLES = sorted((REPO / "crds" / "samples").glob("*.yaml"))
ENTRY_FIELDS = ("id", "name", "macAddress", "address", "cidr", "mtu")
OPTIONAL_ENTRY_FIELDS = ("name", "mtu")


def load_crd():
    docs = list(yaml.safe_load_all(CRD_PATH.read_text()))
    assert len(docs) == 1, "one document"
    return docs[0]


CRD = load_crd()
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SPEC_SCHEMA = SCHEMA["properties"]["spec"]
ENTRY_SCHEMA = SPEC_SCHEMA["properties"]["interfaces"]["items"]


# --- the schema as the API server applies it, minus CEL -------------------------------------------

def go_regex(pattern):
    """A Go RE2 pattern as a Python one: '$' outside a class is the end of the text in Go
    (without the m flag), while Python's '$' also matches before a trailing newline."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(r"\Z" if c == "$" and not in_class else c)
        i += 1
    return re.compile("".join(out))


def go_match(pattern, value):
    return go_regex(pattern).search(value) is not None


def _go_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not go_match(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _strip_k8s(node):
    if isinstance(node, dict):
        return {k: _strip_k8s(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if isinstance(node, list):
        return [_strip_k8s(v) for v in node]
    return node


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value):
    return not isinstance(value, int) or -2**31 <= value < 2**31


@FORMATS.checks("int64")
def _int64(value):
    return not isinstance(value, int) or -2**63 <= value < 2**63


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    datetime.datetime.fromisoformat(re.sub(r"[Zz]\Z", "+00:00", value.replace("t", "T")))
    return True


Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _go_pattern})
VALIDATOR = Validator(_strip_k8s(SCHEMA), format_checker=FORMATS)


def field_name(path):
    """['spec', 'interfaces', 0, 'mtu'] -> 'spec.interfaces[0].mtu', as multinicd names fields."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _list_map_errors(schema, value, path):
    """The API server's own check of x-kubernetes-list-type map (unique key tuples) and set."""
    errors = []
    if isinstance(value, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _list_map_errors(sub, value[key], path + [key])
    elif isinstance(value, list) and schema.get("type") == "array":
        kind, seen = schema.get("x-kubernetes-list-type"), set()
        for i, item in enumerate(value):
            if kind == "map" and isinstance(item, dict):
                key = tuple(json.dumps(item.get(k)) for k in schema["x-kubernetes-list-map-keys"])
            elif kind == "set":
                key = json.dumps(item, sort_keys=True)
            else:
                key = None
            if key is not None and key in seen:
                errors.append((field_name(path + [i]), "Duplicate value"))
            seen.add(key)
            errors += _list_map_errors(schema["items"], item, path + [i])
    return errors


def schema_errors(obj):
    """[(field, message)] for obj against the OpenAPI schema, CEL rules excluded."""
    out = []
    for e in VALIDATOR.iter_errors(obj):
        path = list(e.absolute_path)
        if e.validator == "required":
            path.append(re.match(r"'(.*)' is a required property", e.message).group(1))
        out.append((field_name(path), e.message))
    return out + _list_map_errors(SCHEMA, obj, [])


# --- the CEL rules and their Python re-implementations --------------------------------------------

def _exists_one(items, predicate):
    return sum(1 for x in items if predicate(x)) == 1


def _default_name(x):
    return x["name"] if "name" in x else f"multinic{x['id']}"


def _unique(key):
    return lambda spec: all(_exists_one(spec["interfaces"], lambda b: key(b) == key(a))
                            for a in spec["interfaces"])


def _unique_explicit_names(spec):
    items = spec["interfaces"]
    return all("name" not in a or _exists_one(items, lambda b: "name" in b and
                                               b["name"] == a["name"]) for a in items)


DEFAULT_NAME = re.compile(r"multinic(0|[1-9][0-9]*)\Z")


def _no_name_is_anothers_default(spec):
    items = spec["interfaces"]
    return all("name" not in a or not DEFAULT_NAME.match(a["name"]) or
               not any("name" not in b and b["id"] == int(a["name"][8:]) for b in items)
               for a in items)


# (schema node, rule text exactly as in the CRD, fieldPath, Python re-implementation of the rule
# applied to that node's value)
CEL_RULES = [
    ("", "self.metadata.name == self.spec.nodeName", ".spec.nodeName",
     lambda obj: obj["metadata"]["name"] == obj["spec"]["nodeName"]),
    ("spec", "self.interfaces.all(a, self.interfaces.exists_one(b, b.id == a.id))",
     ".interfaces", _unique(lambda x: x["id"])),
    ("spec", "self.interfaces.all(a, !has(a.name) || "
             "self.interfaces.exists_one(b, has(b.name) && b.name == a.name))",
     ".interfaces", _unique_explicit_names),
    ("spec", "self.interfaces.all(a, !has(a.name) || "
             "!a.name.matches('^multinic(0|[1-9][0-9]*)$') || "
             "!self.interfaces.exists(b, !has(b.name) && b.id == int(a.name.substring(8))))",
     ".interfaces", _no_name_is_anothers_default),
    ("spec", "self.interfaces.all(a, self.interfaces.exists_one(b, "
             "b.macAddress.lowerAscii() == a.macAddress.lowerAscii()))",
     ".interfaces", _unique(lambda x: x["macAddress"].lower())),
    ("spec", "self.interfaces.all(a, self.interfaces.exists_one(b, b.address == a.address))",
     ".interfaces", _unique(lambda x: x["address"])),
]


def schema_at(path):
    node = SCHEMA
    for p in path.split(".") if path else []:
        node = node["properties"][p]
    return node


def cel_failures(obj, openapi_first=True):
    """[(rule, fieldPath)] of the rules whose Python re-implementation refuses obj. Like the API
    server, the rules are meant for an object that passed the OpenAPI schema."""
    if openapi_first:
        assert not schema_errors(obj), schema_errors(obj)
    out = []
    for where, rule, field_path, check in CEL_RULES:
        value = obj
        for p in where.split(".") if where else []:
            value = value[p]
        if not check(value):
            out.append((rule, field_path))
    return out


def cel_rules_in_crd():
    found = []

    def walk(node, path):
        for r in node.get("x-kubernetes-validations", []):
            found.append((path, r["rule"], r.get("fieldPath")))
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if "items" in node:
            walk(node["items"], f"{path}[]")
    walk(SCHEMA, "")
    return found


# --- multinicd's own parser, through multinicctl ------------------------------------------------

@pytest.fixture(scope="module")
def daemon_parse(tmp_path_factory):
    """daemon_parse(document or path) -> (exit status, stderr) of `multinicctl plan`, which
    validates with common/spec.c and then fails to connect to a bus socket that does not exist:
    2 means refused as invalid, 1 means accepted."""
    ctl = next((b / "daemon" / "multinicctl" for b in BUILDS
                if (b / "daemon" / "multinicctl").exists()), None)
    if ctl is None:
        pytest.skip("no build/daemon/multinicctl: run `ninja -C build`")
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path="
               + str(tmp_path_factory.mktemp("nobus") / "no_such_socket"))

    def parse(doc):
        if isinstance(doc, Path):
            args, text = [str(doc)], None
        else:
            args, text = ["-"], json.dumps(doc)
        p = subprocess.run([str(ctl), "plan", "--no-ask-password", "-f", *args], input=text,
                           capture_output=True, text=True, env=env, timeout=30)
        assert p.returncode in (1, 2), p
        if p.returncode == 1:
            assert "cannot connect to the system bus" in p.stderr, p.stderr
        return p.returncode, p.stderr
    return parse


def assert_daemon_refuses(daemon_parse, obj, field):
    rc, err = daemon_parse(obj)
    assert rc == 2, f"multinicd accepts what the CRD refuses: {err}"
    assert f"stdin: {field}" in err, err


def assert_daemon_accepts(daemon_parse, obj):
    rc, err = daemon_parse(obj)
    assert rc == 1, f"multinicd refuses: {err}"


# --- objects --------------------------------------------------------------------------------------

MISSING = object()


def base_entry(i=0):
    return {"id": i, "name": f"multinic{i}", "macAddress": f"fa:16:3e:00:00:{i + 1:02x}",
            "address": f"10.1.0.{11 + i}", "cidr": "10.1.0.0/24", "mtu": 1450}


def cr(interfaces=None, **spec):
    """A valid MultiNicNodeConfig; interfaces default to two entries in 10.1.0.0/24."""
    obj = {"apiVersion": "multinic.io/v1alpha1", "kind": "MultiNicNodeConfig",
           "metadata": {"name": "node-a", "namespace": "multinic-system"},
           "spec": {"nodeName": "node-a", "instanceId": "b4975c5f-50bb-479f-9e7b-a430815ae852",
                    "interfaces": [base_entry(0), base_entry(1)]}}
    if interfaces is not None:
        spec["interfaces"] = interfaces
    for key, value in spec.items():
        if value is MISSING:
            del obj["spec"][key]
        else:
            obj["spec"][key] = value
    return obj


def entry(**fields):
    """A CR whose first entry has fields changed (MISSING drops one); the second is valid."""
    e = base_entry(0)
    for key, value in fields.items():
        if value is MISSING:
            del e[key]
        else:
            e[key] = value
    return cr([e, base_entry(1)])


def many(n):
    return [{"id": i, "macAddress": f"fa:16:3e:00:{i >> 8:02x}:{i & 255:02x}",
             "address": f"10.128.{i // 200}.{i % 200 + 1}", "cidr": "10.128.0.0/16"}
            for i in range(n)]


# name: (object, field the schema names, whether multinicd refuses it too)
BAD = {
    # MAC forms of shared/cases/05
    "mac-dashes": (entry(macAddress="fa-16-3e-00-00-01"), "spec.interfaces[0].macAddress", True),
    "mac-bare-hex": (entry(macAddress="fa163e000001"), "spec.interfaces[0].macAddress", True),
    "mac-five-octets": (entry(macAddress="fa:16:3e:00:00"), "spec.interfaces[0].macAddress", True),
    "mac-non-hex": (entry(macAddress="fa:16:3e:00:00:0g"), "spec.interfaces[0].macAddress", True),
    "mac-seven-octets": (entry(macAddress="fa:16:3e:00:00:01:02"),
                         "spec.interfaces[0].macAddress", True),
    "mac-dots": (entry(macAddress="fa16.3e00.0001"), "spec.interfaces[0].macAddress", True),
    "mac-leading-space": (entry(macAddress=" fa:16:3e:00:00:01"),
                          "spec.interfaces[0].macAddress", True),
    "mac-trailing-newline": (entry(macAddress="fa:16:3e:00:00:01\n"),
                             "spec.interfaces[0].macAddress", True),
    "mac-single-digits": (entry(macAddress="fa:16:3e:0:0:1"), "spec.interfaces[0].macAddress",
                          True),
    "mac-as-number": (entry(macAddress=1), "spec.interfaces[0].macAddress", True),
    "mac-missing": (entry(macAddress=MISSING), "spec.interfaces[0].macAddress", True),
    # names of shared/cases/09 and the kernel's other rules
    "name-17-bytes": (entry(name="multinic-storage0"), "spec.interfaces[0].name", True),
    "name-16-bytes": (entry(name="multinic01234567"), "spec.interfaces[0].name", True),
    "name-slash": (entry(name="a/b"), "spec.interfaces[0].name", True),
    "name-colon": (entry(name="a:b"), "spec.interfaces[0].name", True),
    "name-percent": (entry(name="multinic%d"), "spec.interfaces[0].name", True),
    "name-space": (entry(name="multi nic"), "spec.interfaces[0].name", True),
    "name-tab": (entry(name="nic\t0"), "spec.interfaces[0].name", True),
    "name-empty": (entry(name=""), "spec.interfaces[0].name", True),
    "name-dot": (entry(name="."), "spec.interfaces[0].name", True),
    "name-dotdot": (entry(name=".."), "spec.interfaces[0].name", True),
    "name-non-ascii": (entry(name="multinic\u00e9"), "spec.interfaces[0].name", True),
    # 15 characters but 16 bytes: what maxLength alone (which counts characters) would let by
    "name-15-chars-16-bytes": (entry(name="multinic012345\u00e9"), "spec.interfaces[0].name",
                               True),
    "name-as-boolean": (entry(name=True), "spec.interfaces[0].name", True),
    # MTU
    "mtu-60": (entry(mtu=60), "spec.interfaces[0].mtu", True),
    "mtu-67": (entry(mtu=67), "spec.interfaces[0].mtu", True),
    "mtu-as-string": (entry(mtu="1450"), "spec.interfaces[0].mtu", True),
    "mtu-fraction": (entry(mtu=1450.5), "spec.interfaces[0].mtu", True),
    # multinicd leaves the upper end to the device's maximum (see the docs in spec.c), which no
    # device puts above 65535; the CRD says 65535 at once.
    "mtu-70000": (entry(mtu=70000), "spec.interfaces[0].mtu", False),
    # id
    "id-minus-1": (entry(id=-1), "spec.interfaces[0].id", True),
    "id-1024": (entry(id=1024), "spec.interfaces[0].id", True),
    "id-as-string": (entry(id="0"), "spec.interfaces[0].id", True),
    "id-as-boolean": (entry(id=False), "spec.interfaces[0].id", True),
    "id-missing": (entry(id=MISSING), "spec.interfaces[0].id", True),
    # address
    "address-octet-400": (entry(address="10.1.400.11"), "spec.interfaces[0].address", True),
    "address-256": (entry(address="256.1.0.11"), "spec.interfaces[0].address", True),
    "address-leading-zero": (entry(address="10.1.0.011"), "spec.interfaces[0].address", True),
    "address-three-parts": (entry(address="10.1.11"), "spec.interfaces[0].address", True),
    "address-with-prefix": (entry(address="10.1.0.11/24"), "spec.interfaces[0].address", True),
    "address-ipv6": (entry(address="fd00::11"), "spec.interfaces[0].address", True),
    "address-trailing-newline": (entry(address="10.1.0.11\n"), "spec.interfaces[0].address",
                                 True),
    "address-missing": (entry(address=MISSING), "spec.interfaces[0].address", True),
    # cidr (a network with host bits, 10.1.0.5/24, is multinicd's: see LEFT_TO_DAEMON)
    "cidr-prefix-33": (entry(cidr="10.1.0.0/33"), "spec.interfaces[0].cidr", True),
    "cidr-prefix-0": (entry(cidr="0.0.0.0/0"), "spec.interfaces[0].cidr", True),
    "cidr-prefix-zero-padded": (entry(cidr="10.1.0.0/08"), "spec.interfaces[0].cidr", True),
    "cidr-prefix-signed": (entry(cidr="10.1.0.0/+24"), "spec.interfaces[0].cidr", True),
    "cidr-without-prefix": (entry(cidr="10.1.0.0"), "spec.interfaces[0].cidr", True),
    "cidr-bad-network": (entry(cidr="10.1.0/24"), "spec.interfaces[0].cidr", True),
    "cidr-ipv6": (entry(cidr="fd00::/64"), "spec.interfaces[0].cidr", True),
    "cidr-missing": (entry(cidr=MISSING), "spec.interfaces[0].cidr", True),
    # the spec's own fields
    "interfaces-missing": (cr(interfaces=MISSING), "spec.interfaces", True),
    "interfaces-as-object": (cr(interfaces={}), "spec.interfaces", True),
    "interfaces-entry-as-string": (cr(interfaces=["multinic0"]), "spec.interfaces[0]", True),
    "interfaces-257": (cr(interfaces=many(257)), "spec.interfaces", True),
    "instanceId-not-hex": (cr(instanceId="node-1; rm -rf /"), "spec.instanceId", True),
    "instanceId-as-number": (cr(instanceId=1), "spec.instanceId", True),
    # multinicd takes any run of hex digits and dashes (and then finds it is no host's UUID)
    "instanceId-not-a-uuid": (cr(instanceId="b4975c5f50bb479f"), "spec.instanceId", False),
    "nodeName-as-number": (cr(nodeName=1), "spec.nodeName", True),
    # multinicd does not read nodeName: the bridge finds the object by its name
    "nodeName-missing": (cr(nodeName=MISSING), "spec.nodeName", False),
    "spec-missing": ({k: v for k, v in cr().items() if k != "spec"}, "spec", True),
    "spec-as-list": (dict(cr(), spec=[]), "spec", True),
}

# Accepted by both.
GOOD = {
    "name-15-bytes": entry(name="multinic0123456"),
    "name-punctuation": entry(name="nic-0_a.b@x!"),
    "name-two-chars-with-dot": entry(name=".a"),
    "name-three-dots": entry(name="..."),
    "name-missing": entry(name=MISSING),
    "mac-upper-case": entry(macAddress="FA:16:3E:00:00:01"),
    "mac-mixed-case": entry(macAddress="Fa:16:3e:00:00:0A"),
    "mtu-68": entry(mtu=68),
    "mtu-65535": entry(mtu=65535),
    "mtu-missing": entry(mtu=MISSING),
    "id-0-and-1023": cr([base_entry(0), dict(base_entry(1), id=1023, name="multinic1023")]),
    "cidr-31": entry(address="10.1.0.10", cidr="10.1.0.10/31"),
    "cidr-32": entry(address="10.1.0.10", cidr="10.1.0.10/32"),
    "address-zero-octets": entry(address="10.0.0.1", cidr="10.0.0.0/8"),
    "instanceId-upper-case": cr(instanceId="B4975C5F-50BB-479F-9E7B-A430815AE852"),
    "instanceId-missing": cr(instanceId=MISSING),
    "interfaces-empty": cr(interfaces=[]),
    "interfaces-256": cr(interfaces=many(256)),
}

# Accepted by the schema, refused by multinicd: what only multinicd enforces.
LEFT_TO_DAEMON = {
    "cidr-host-bits": (entry(cidr="10.1.0.5/24"), "spec.interfaces[0].cidr"),
    "address-outside-cidr": (entry(address="10.2.0.11"), "spec.interfaces[0].address"),
    "address-is-network": (entry(address="10.1.0.0"), "spec.interfaces[0].address"),
    "address-is-broadcast": (entry(address="10.1.0.255"), "spec.interfaces[0].address"),
    "name-all": (entry(name="all"), "spec.interfaces[0].name"),
    "name-default": (entry(name="default"), "spec.interfaces[0].name"),
}

# Accepted by the OpenAPI schema, refused by a CEL rule: (object, rule index in CEL_RULES,
# field multinicd names, or None where multinicd does not check it).
CEL_BAD = {
    "name-is-not-nodeName": (dict(cr(), metadata={"name": "node-b"}), 0, None),
    # refused by the list-map key as well, see test_duplicate_id_is_refused_by_the_list_map_key
    "duplicate-id": (cr([base_entry(0), dict(base_entry(1), id=0, name="multinic1")]), 1,
                     "spec.interfaces[1].id"),
    "duplicate-name": (cr([base_entry(0), dict(base_entry(1), name="multinic0")]), 2,
                       "spec.interfaces[1].name"),
    "duplicate-default-name": (cr([dict(base_entry(0), name="multinic1"),
                                   {k: v for k, v in base_entry(1).items() if k != "name"}]), 3,
                               "spec.interfaces[1].name"),
    "duplicate-default-names": (cr([{k: v for k, v in base_entry(0).items() if k != "name"},
                                    dict(base_entry(1), name="multinic0")]), 3,
                                "spec.interfaces[1].name"),
    "name-is-a-large-ids-default": (cr([dict(base_entry(0), name="multinic1023"),
                                        {k: v for k, v in dict(base_entry(1), id=1023).items()
                                         if k != "name"}]), 3, "spec.interfaces[1].name"),
    "duplicate-mac-other-case": (cr([base_entry(0),
                                     dict(base_entry(1), macAddress="FA:16:3E:00:00:01")]), 4,
                                 "spec.interfaces[1].macAddress"),
    "duplicate-address": (cr([base_entry(0), dict(base_entry(1), address="10.1.0.11")]), 5,
                          "spec.interfaces[1].address"),
}


# --- the CRD itself -------------------------------------------------------------------------------

def test_crd_names_scope_and_version():
    assert CRD["apiVersion"] == "apiextensions.k8s.io/v1"
    assert CRD["kind"] == "CustomResourceDefinition"
    assert CRD["metadata"]["name"] == "multinicnodeconfigs.multinic.io"
    spec = CRD["spec"]
    assert spec["group"] == "multinic.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {"kind": "MultiNicNodeConfig", "listKind": "MultiNicNodeConfigList",
                             "plural": "multinicnodeconfigs", "singular": "multinicnodeconfig",
                             "shortNames": ["mnnc"]}
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1"]
    assert VERSION["served"] is True and VERSION["storage"] is True
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns():
    columns = [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
               for c in VERSION["additionalPrinterColumns"]]
    assert columns == [
        ("Node", "string", ".spec.nodeName", 0),
        ("State", "string", ".status.state", 0),
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        # A count the bridge writes: the API server's table shows only the first value that a
        # JSONPath over a list finds, so .status.interfaceStatuses[*].name would show one NIC.
        ("Interfaces", "string", ".status.interfacesReady", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    # Every column but Age reads a field that the schema declares.
    for name, _, path, _ in columns[:-1]:
        node = SCHEMA
        for part in re.sub(r"\[[^]]*\]", "[]", path).strip(".").split("."):
            is_list = part.endswith("[]")
            node = node["properties"][part.removesuffix("[]")]
            if is_list:
                node = node["items"]
        assert node["type"] == "string", name


def test_status_shape():
    status = SCHEMA["properties"]["status"]["properties"]
    assert status["state"]["enum"] == ["Pending", "InProgress", "Configured", "Failed"]
    assert (status["observedGeneration"]["type"], status["observedGeneration"]["format"]) == \
        ("integer", "int64")
    assert status["lastProcessed"]["format"] == "date-time"
    cond = status["conditions"]
    assert cond["x-kubernetes-list-type"] == "map"
    assert cond["x-kubernetes-list-map-keys"] == ["type"]
    assert set(cond["items"]["properties"]) == {"type", "status", "observedGeneration",
                                                "lastTransitionTime", "reason", "message"}
    assert cond["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert set(status["interfaceStatuses"]["items"]["properties"]) == \
        {"id", "name", "macAddress", "state", "message"}
    # What the bridge writes: an unchanged NIC is configured, a released one is not listed.
    assert status["interfaceStatuses"]["items"]["properties"]["state"]["enum"] == \
        ["configured", "pending", "failed"]
    assert "not listed" in status["interfaceStatuses"]["description"]
    ready = status["interfacesReady"]
    assert (ready["type"], ready["maxLength"]) == ("string", 9)
    assert go_match(ready["pattern"], "256/256") and not go_match(ready["pattern"], "2 of 2")
    # When the spec was handled, not when InProgress was written.
    assert "InProgress" in status["lastProcessed"]["description"]


def test_status_examples():
    now = "2025-01-02T03:04:05Z"
    good = dict(cr(), status={
        "state": "Configured", "observedGeneration": 3, "lastProcessed": now,
        "interfacesReady": "1/2",
        "conditions": [
            {"type": "Ready", "status": "True", "observedGeneration": 3,
             "lastTransitionTime": now, "reason": "Configured", "message": ""},
            {"type": "Degraded", "status": "False", "reason": "AsExpected",
             "lastTransitionTime": "2025-01-02T03:04:05.5+01:00",
             "message": "all NICs configured"}],
        "interfaceStatuses": [
            {"id": 0, "name": "multinic0", "macAddress": "fa:16:3e:00:00:01",
             "state": "configured", "message": ""},
            {"macAddress": "fa:16:3e:00:00:09", "state": "pending", "message": ""}]})
    assert schema_errors(good) == []

    def with_status(**changes):
        obj = json.loads(json.dumps(good))
        for path, value in changes.items():
            *parents, last = path.split("__")
            node = obj["status"]
            for p in parents:
                node = node[int(p)] if p.isdigit() else node[p]
            node[last] = value
        return obj

    bad = {
        "status.state": with_status(state="Done"),
        "status.observedGeneration": with_status(observedGeneration="3"),
        "status.lastProcessed": with_status(lastProcessed="yesterday"),
        "status.conditions[0].status": with_status(conditions__0__status="true"),
        "status.conditions[0].reason": with_status(conditions__0__reason="not camel case"),
        "status.conditions[0].lastTransitionTime": with_status(
            conditions__0__lastTransitionTime="2025-01-02 03:04:05"),
        "status.conditions[1]": with_status(conditions__1__type="Ready"),
        "status.interfaceStatuses[0].state": with_status(interfaceStatuses__0__state="Configured"),
        "status.interfaceStatuses[1].state": with_status(interfaceStatuses__1__state="removed"),
        "status.interfacesReady": with_status(interfacesReady="1 of 2"),
    }
    for field, obj in bad.items():
        assert field in [f for f, _ in schema_errors(obj)], (field, schema_errors(obj))


# --- a structural schema --------------------------------------------------------------------------

TYPES = {"object", "array", "string", "integer", "number", "boolean"}
FORBIDDEN = {"$ref", "definitions", "dependencies", "additionalItems", "patternProperties", "id",
             "$schema", "allOf", "anyOf", "oneOf", "not"}


def structural_problems(node, path="openAPIV3Schema"):
    problems = []
    if node.get("type") not in TYPES and not node.get("x-kubernetes-int-or-string") \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    problems += [f"{path}: {k} is not allowed" for k in FORBIDDEN & node.keys()]
    if node.get("uniqueItems"):
        problems.append(f"{path}: uniqueItems: true is not allowed")
    if "additionalProperties" in node and ("properties" in node or
                                           node["additionalProperties"] is False):
        problems.append(f"{path}: additionalProperties with properties, or false")
    if node.get("format") not in (None, "int32", "int64", "date-time"):
        problems.append(f"{path}: unexpected format {node['format']}")
    if node.get("type") == "array":
        if not isinstance(node.get("items"), dict):
            problems.append(f"{path}: an array needs one items schema")
        elif node.get("x-kubernetes-list-type") == "map":
            items = node["items"]
            for key in node.get("x-kubernetes-list-map-keys", []) or [None]:
                prop = items.get("properties", {}).get(key)
                if items.get("type") != "object" or not prop or \
                        prop.get("type") not in ("string", "integer", "boolean") or \
                        (key not in items.get("required", []) and "default" not in prop):
                    problems.append(f"{path}: list-map key {key} must be a required scalar")
    for req in node.get("required", []):
        if req not in node.get("properties", {}):
            problems.append(f"{path}: required {req} is not a property")
    for key, sub in node.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]")
    return problems


def test_schema_is_structural():
    assert structural_problems(SCHEMA) == []
    # At the root only apiVersion, kind, metadata (as a bare object), spec and status.
    assert set(SCHEMA["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert SCHEMA["properties"]["metadata"] == {"type": "object"}
    assert SCHEMA["required"] == ["spec"]


def test_schema_is_a_valid_draft7_schema_once_translated():
    jsonschema.Draft7Validator.check_schema(_strip_k8s(SCHEMA))

    def patterns(node):
        yield from [node["pattern"]] if "pattern" in node else []
        for sub in list(node.get("properties", {}).values()) + \
                ([node["items"]] if "items" in node else []):
            yield from patterns(sub)
    found = list(patterns(SCHEMA))
    assert len(found) == 8
    for pattern in found:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        go_regex(pattern)


def test_entry_fields_and_bounds():
    interfaces = SPEC_SCHEMA["properties"]["interfaces"]
    assert SPEC_SCHEMA["required"] == ["nodeName", "interfaces"]
    assert interfaces["maxItems"] == 256
    assert "minItems" not in interfaces, "an empty list releases every NIC on purpose"
    assert interfaces["x-kubernetes-list-type"] == "map"
    assert interfaces["x-kubernetes-list-map-keys"] == ["id"]
    props = ENTRY_SCHEMA["properties"]
    assert tuple(props) == ENTRY_FIELDS
    assert set(ENTRY_SCHEMA["required"]) == set(ENTRY_FIELDS) - set(OPTIONAL_ENTRY_FIELDS)
    assert (props["id"]["minimum"], props["id"]["maximum"]) == (0, 1023)
    assert (props["mtu"]["minimum"], props["mtu"]["maximum"]) == (68, 65535)
    assert props["name"]["maxLength"] == 15


def test_cel_inputs_are_bounded():
    """The API server estimates each CEL rule's cost from maxItems and maxLength and refuses a
    CRD whose rules are unbounded: every string and list a rule reads must be bounded."""
    assert "maxItems" in SPEC_SCHEMA["properties"]["interfaces"]
    assert "maxLength" in SPEC_SCHEMA["properties"]["nodeName"]
    for key, prop in ENTRY_SCHEMA["properties"].items():
        if prop["type"] == "string":
            assert "maxLength" in prop, key


# --- samples --------------------------------------------------------------------------------------

def test_samples_exist():
    assert {p.name for p in SAMPLES} >= {"viola2-biz-worker01.yaml", "viola2-biz-worker02.yaml"}


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_is_valid_for_the_crd(path):
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 1
    obj = docs[0]
    assert obj["apiVersion"] == f"{CRD['spec']['group']}/{VERSION['name']}"
    assert obj["kind"] == CRD["spec"]["names"]["kind"]
    assert obj["metadata"]["namespace"] == "multinic-system"
    assert schema_errors(obj) == []
    assert cel_failures(obj) == []


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_is_valid_for_multinicd(path, daemon_parse):
    rc, err = daemon_parse(path)
    assert rc == 1, err


def test_larger_sample_covers_the_optional_forms():
    obj = yaml.safe_load((REPO / "crds/samples/viola2-biz-worker02.yaml").read_text())
    entries = obj["spec"]["interfaces"]
    assert len(entries) == 8
    assert len({e["cidr"] for e in entries}) == 2
    assert any("name" not in e for e in entries) and any("mtu" not in e for e in entries)
    assert any(e["macAddress"] != e["macAddress"].lower() for e in entries)


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj,field,daemon_too", BAD.values(), ids=BAD.keys())
def test_bad_spec_is_refused_naming_the_field(obj, field, daemon_too, daemon_parse):
    errors = schema_errors(obj)
    assert field in [f for f, _ in errors], errors
    if daemon_too:
        assert_daemon_refuses(daemon_parse, obj, field)
    else:
        # A documented difference: the CRD is stricter than multinicd here.
        assert_daemon_accepts(daemon_parse, obj)


def test_bad_table_is_large_enough():
    assert len(BAD) >= 20


@pytest.mark.parametrize("obj", GOOD.values(), ids=GOOD.keys())
def test_good_spec_is_accepted(obj, daemon_parse):
    assert schema_errors(obj) == []
    assert cel_failures(obj) == []
    assert_daemon_accepts(daemon_parse, obj)


@pytest.mark.parametrize("obj,field", LEFT_TO_DAEMON.values(), ids=LEFT_TO_DAEMON.keys())
def test_what_only_multinicd_refuses(obj, field, daemon_parse):
    assert schema_errors(obj) == []
    assert cel_failures(obj) == []
    assert_daemon_refuses(daemon_parse, obj, field)


def test_unknown_fields_are_not_refused_but_pruned():
    """The API server prunes fields the schema does not declare (no additionalProperties: false
    in a structural schema); multinicd refuses unknown keys, and never sees them."""
    obj = entry(gateway="10.1.0.1")
    assert schema_errors(obj) == []
    assert "gateway" not in ENTRY_SCHEMA["properties"]


def test_duplicate_id_is_refused_by_the_list_map_key():
    obj, _, _ = CEL_BAD["duplicate-id"]
    assert ("spec.interfaces[1]", "Duplicate value") in schema_errors(obj)


# --- the patterns against multinicd's parsers, value by value ------------------------------------
# Python ports of common/spec.c's parsers (mac_parse, ifname_valid, cidr_parse) and glibc's
# inet_pton() itself, which the daemon calls, against each pattern (and maxLength) on many values.

def entry_accepts(field, value):
    prop = ENTRY_SCHEMA["properties"][field]
    return len(value) <= prop["maxLength"] and go_match(prop["pattern"], value)


def c_mac_parse(s):
    b = s.encode()
    hexdigits = b"0123456789abcdefABCDEF"
    return len(b) == 17 and all(b[i * 3] in hexdigits and b[i * 3 + 1] in hexdigits and
                                (i == 5 or b[i * 3 + 2] == ord(":")) for i in range(6))


def c_ifname_valid(s):
    b = s.encode()
    return 0 < len(b) < 16 and b not in (b".", b"..") and \
        all(0x21 <= c <= 0x7e and c not in b"/:%" for c in b)


def c_inet_pton(s):
    try:
        socket.inet_pton(socket.AF_INET, s)
        return True
    except (OSError, ValueError, UnicodeError):
        return False


def c_cidr_parse(s):
    if "/" not in s:
        return False
    net, plen = s.split("/", 1)
    return len(net.encode()) < 16 and c_inet_pton(net) and len(plen) in (1, 2) and \
        all(c in "0123456789" for c in plen) and not (plen[0] == "0" and len(plen) > 1) and \
        1 <= int(plen) <= 32


def test_name_pattern_equals_ifname_valid():
    chars = [chr(c) for c in range(1, 128)] + ["\u00e9", "\u20ac"]
    values = chars + [a + b for a in chars for b in chars]
    values += ["x" * n for n in range(17)] + ["." * n for n in range(5)]
    values += ["multinic012345\u00e9", "multinic01234\u00e9", "a.b.c", "%d", "-", "lo",
               "multinic0123456", "multinic01234567"]
    differ = [v for v in values if entry_accepts("name", v) != c_ifname_valid(v)]
    assert differ == []


def test_mac_pattern_equals_mac_parse():
    base = "fa:16:3e:0a:1b:2c"
    values = [base, base.upper(), base + ":00", base[:-3], base + "\n", " " + base, ""]
    for i in range(len(base)):
        for c in ":-.0Ff gGz\u00e9":
            values.append(base[:i] + c + base[i + 1:])
        values.append(base[:i] + base[i + 1:])
    differ = [v for v in values if entry_accepts("macAddress", v) != c_mac_parse(v)]
    assert differ == []


OCTETS = ["0", "1", "9", "00", "01", "010", "99", "100", "199", "200", "249", "250", "255",
          "256", "260", "300", "999", "0255", "-1", "+1", " 1", "1 ", "a", "", "0x1", "1e1"]


def address_values():
    values = []
    for i in range(4):
        for o in OCTETS:
            parts = ["10", "20", "30", "40"]
            parts[i] = o
            values.append(".".join(parts))
    return values + ["1.2.3", "1.2.3.4.5", "1.2.3.4\n", "1.2.3.4/24", "::1", "1..3.4",
                     "255.255.255.255", "0.0.0.0", "\u0661.2.3.4"]


def test_address_pattern_equals_inet_pton():
    differ = [v for v in address_values() if entry_accepts("address", v) != c_inet_pton(v)]
    assert differ == []


def test_cidr_pattern_equals_cidr_parse():
    prefixes = ["", "0", "1", "8", "08", "+8", "-8", "24", "32", "33", "99", "024", " 8", "8 ",
                "1x", "100", "8/8", "\u0668"]
    values = [f"{a}/{p}" for a in address_values() for p in ("24",)]
    values += [f"10.1.0.0/{p}" for p in prefixes] + ["10.1.0.0", "/24", "10.1.0.0/24\n"]
    differ = [v for v in values if entry_accepts("cidr", v) != c_cidr_parse(v)]
    assert differ == []


def test_instance_id_pattern_is_within_what_multinicd_takes():
    pattern = SPEC_SCHEMA["properties"]["instanceId"]["pattern"]
    for value in ["b4975c5f-50bb-479f-9e7b-a430815ae852", "B4975C5F-50BB-479F-9E7B-A430815AE852"]:
        assert go_match(pattern, value)
    for value in ["b4975c5f50bb479f9e7ba430815ae852", "{b4975c5f-50bb-479f-9e7b-a430815ae852}",
                  "b4975c5f-50bb-479f-9e7b-a430815ae85g", "b4975c5f-50bb-479f-9e7b-a430815ae852\n"]:
        assert not go_match(pattern, value)


# --- CEL ------------------------------------------------------------------------------------------

def cel_balanced(rule):
    """Brackets and quotes balance and each '?' has its ':' (CEL text outside string literals)."""
    stack, quote, ternary, i = [], None, 0, 0
    pairs = {")": "(", "]": "[", "}": "{"}
    while i < len(rule):
        c = rule[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([{":
            stack.append(c)
        elif c in ")]}":
            if not stack or stack.pop() != pairs[c]:
                return False
        elif c == "?":
            ternary += 1
        elif c == ":":
            ternary -= 1
            if ternary < 0:
                return False
        i += 1
    return not stack and quote is None and ternary == 0


def test_cel_rules_are_the_pinned_ones():
    """The CRD holds exactly the rules re-implemented in CEL_RULES (text compared exactly), each
    with its fieldPath; the text itself is evaluated by the tests of the real CEL section."""
    assert cel_rules_in_crd() == [(where, rule, fp) for where, rule, fp, _ in CEL_RULES]


@pytest.mark.parametrize("where,rule,field_path,_", CEL_RULES,
                         ids=[f"rule{i}" for i in range(len(CEL_RULES))])
def test_cel_rule_is_well_formed(where, rule, field_path, _):
    assert cel_balanced(rule), rule
    node = schema_at(where)
    # fieldPath names a declared field below the rule's node.
    target = node
    for part in field_path.strip(".").split("."):
        target = target["properties"][part]
    # self.metadata only at the root, where CEL sees metadata.name.
    if "self.metadata" in rule:
        assert where == ""
    # Every field a rule reads is declared; optional entry fields only after has().
    names = set(re.findall(r"\.([A-Za-z_]\w*)", rule)) - {"all", "exists_one", "exists",
                                                         "lowerAscii", "matches", "substring"}
    declared = set(node["properties"]) | set(ENTRY_SCHEMA["properties"]) | \
        set(SPEC_SCHEMA["properties"]) | {"name"}
    assert names <= declared, names - declared
    entry_vars = set(re.findall(r"\.(?:all|exists_one|exists)\((\w+),", rule))
    for field in OPTIONAL_ENTRY_FIELDS:
        for var in entry_vars & set(re.findall(rf"\b(\w+)\.{field}\b", rule)):
            assert f"has({var}.{field})" in rule, (field, var)
    # The list rules are over the bounded list only.
    for call in re.findall(r"self\.(\w+)\.(?:all|exists_one|exists)\(", rule):
        assert node["properties"][call].get("maxItems"), call
    # No string made from a number: string(int) has no size bound for the API server's cost
    # estimator, which then refuses the CRD (the rule's estimated cost exceeds the budget).
    assert not re.search(r"(?<![\w.])string\(", rule)


@pytest.mark.parametrize("obj,index,daemon_field", CEL_BAD.values(), ids=CEL_BAD.keys())
def test_cel_rule_refuses(obj, index, daemon_field, daemon_parse):
    # A duplicate id is refused by the list-map key too, so only that one skips the schema.
    failed = cel_failures(obj, openapi_first=index != 1)
    assert failed == [CEL_RULES[index][1:3]], failed
    if daemon_field is None:
        assert_daemon_accepts(daemon_parse, obj)
    else:
        assert_daemon_refuses(daemon_parse, obj, daemon_field)


def test_the_two_name_rules_together_mean_unique_names_after_defaulting():
    """Every spec of up to three entries, ids 0..2 (or 10), each without a name or with one of
    a few that look like defaults: the two rules refuse exactly what unique names after filling
    in multinic<id> refuses (the one rule they replace)."""
    import itertools
    names = [MISSING, "multinic0", "multinic1", "multinic01", "multinic10", "nic"]
    checked = 0
    for n in range(1, 4):
        for ids in itertools.permutations([0, 1, 2, 10], n):
            for chosen in itertools.product(names, repeat=n):
                spec = {"interfaces": [{"id": i} if nm is MISSING else {"id": i, "name": nm}
                                       for i, nm in zip(ids, chosen)]}
                both = _unique_explicit_names(spec) and _no_name_is_anothers_default(spec)
                assert both == _unique(_default_name)(spec), spec
                checked += 1
    assert checked > 1000


def test_cel_rules_accept_distinct_entries_that_look_alike():
    # Same MAC hex in another position, names that only differ in case, id 1 next to
    # name "multinic01": none of these is a duplicate.
    unnamed = {k: v for k, v in base_entry(1).items() if k != "name"}
    obj = cr([dict(base_entry(0), name="Multinic1"), unnamed,
              dict(base_entry(2), name="multinic01", macAddress="fa:16:3e:01:00:00")])
    assert cel_failures(obj) == []


# --- CEL, evaluated: the CRD's own rule text through a real CEL implementation ------------------
# tests/cel/eval.mjs runs the rules with @bufbuild/cel (its version pinned in
# tests/cel/package-lock.json) and the Kubernetes extension functions that the rules use. Rules
# are taken from the schema at every level that declares them, and evaluated as the API server
# does: `self` is the value at that level (every element for a rule under a list's items), the
# root sees metadata.name and metadata.generateName only, and a failed rule is reported at its
# level plus its fieldPath, with its message.

CEL_DIR = REPO / "tests" / "cel"


def cel_sites(schema):
    """[(where, [rule dict])] of the schema nodes that declare rules; where as in CEL_RULES
    ("" for the root, "spec", "spec.interfaces[]")."""
    found = []

    def walk(node, path):
        if node.get("x-kubernetes-validations"):
            found.append((path, node["x-kubernetes-validations"]))
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
    walk(schema, "")
    return found


def values_at(obj, where):
    """[(field, value)] of the values a rule declared at `where` sees as self, e.g.
    ("spec.interfaces[1]", {...}) for "spec.interfaces[]"; none where a field is absent."""
    found = [("", obj)]
    for part in where.split(".") if where else []:
        key, is_list = part.removesuffix("[]"), part.endswith("[]")
        step = []
        for field, value in found:
            if isinstance(value, dict) and key in value:
                field = f"{field}.{key}" if field else key
                if is_list:
                    step += [(f"{field}[{i}]", v) for i, v in enumerate(value[key] or [])]
                else:
                    step.append((field, value[key]))
        found = step
    if where == "":
        # At the root the API server gives CEL only these two of metadata's fields.
        found = [(f, dict(v, metadata={k: v["metadata"][k] for k in ("name", "generateName")
                                       if k in v.get("metadata", {})}))
                 for f, v in found]
    return found


@pytest.fixture(scope="session")
def cel_node():
    """The node binary, with tests/cel's pinned packages installed (npm ci, once)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: nodejs and npm): the CRD's CEL rules are "
                    "not evaluated, only their Python re-implementations")
    if not (CEL_DIR / "node_modules" / "@bufbuild" / "cel" / "package.json").exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (Debian: npm): cannot install tests/cel's packages")
        # One installer at a time when several test runs share the tree.
        with open(CEL_DIR / "package.json") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (CEL_DIR / "node_modules" / "@bufbuild" / "cel" / "package.json").exists():
                p = subprocess.run([npm, "ci", "--prefix", str(CEL_DIR), "--no-audit",
                                    "--no-fund"], capture_output=True, text=True, timeout=600)
                assert p.returncode == 0, f"npm ci --prefix tests/cel failed:\n{p.stderr}"
    return node


def cel_run(node, jobs):
    """tests/cel/eval.mjs on a list of jobs {rules: [{rule, message}], cases: [{self, oldSelf?}]},
    in one Node.js process: the list of results."""
    p = subprocess.run([node, str(CEL_DIR / "eval.mjs")], capture_output=True, text=True,
                       timeout=300, input=json.dumps(jobs))
    assert p.returncode == 0, p.stderr
    results = json.loads(p.stdout)
    assert len(results) == len(jobs)
    return results


def cel_evaluate_many(node, runs):
    """For each (schema, {name: obj}) of runs, every rule of schema on every object:
    ({name: {"failed": [(field, message)], "errors": [(field, message, error)]}},
     [(where, message, compile error)])."""
    jobs, job_cases = [], []
    for schema, objects in runs:
        for where, rules in cel_sites(schema):
            cases = [(name, field, value) for name, obj in objects.items()
                     for field, value in values_at(obj, where)]
            jobs.append({"rules": [{"rule": r["rule"], "message": r["message"]} for r in rules],
                         "cases": [{"self": value} for _, _, value in cases]})
            job_cases.append(cases)
    results = cel_run(node, jobs)
    outs, job = [], 0
    for schema, objects in runs:
        out = {name: {"failed": [], "errors": []} for name in objects}
        compile_errors = []
        for where, rules in cel_sites(schema):
            result, cases = results[job], job_cases[job]
            job += 1
            compile_errors += [(where, c["message"], c["error"]) for c in result["compile"]]
            paths = {r["message"]: r.get("fieldPath", "") for r in rules}
            for (name, field, _), res in zip(cases, result["cases"]):
                out[name]["failed"] += [(f"{field}{paths[m]}".lstrip("."), m)
                                        for m in res["failed"]]
                out[name]["errors"] += [(f"{field}{paths[e['message']]}".lstrip("."),
                                         e["message"], e["error"]) for e in res["errors"]]
        outs.append((out, compile_errors))
    return outs


def cel_evaluate(node, schema, objects):
    return cel_evaluate_many(node, [(schema, objects)])[0]


def crd_rule_messages(schema):
    """[(where, rule, fieldPath, message)] in the order of CEL_RULES."""
    return [(where, r["rule"], r.get("fieldPath"), r["message"])
            for where, rules in cel_sites(schema) for r in rules]


def cel_expected_refusal(index):
    """(field, message) with which the API server refuses an object that fails rule `index`."""
    where, _, field_path, message = crd_rule_messages(SCHEMA)[index]
    return (f"{where}{field_path}".lstrip("."), message)


def unnamed(i, **fields):
    return dict({k: v for k, v in base_entry(i).items() if k != "name"}, **fields)


# Objects every rule accepts (beyond GOOD, LEFT_TO_DAEMON and the samples).
CEL_GOOD = {
    # Same MAC hex in another position, names that only differ in case, id 1 next to name
    # "multinic01": none of these is a duplicate.
    "look-alikes": cr([dict(base_entry(0), name="Multinic1"), unnamed(1),
                       dict(base_entry(2), name="multinic01", macAddress="fa:16:3e:01:00:00")]),
    # A name that is the default of no listed id, next to entries without names.
    "default-name-of-an-absent-id": cr([unnamed(0), unnamed(1),
                                        dict(base_entry(2), name="multinic7")]),
    "no-names": cr([unnamed(0), unnamed(1)]),
    "generateName-too": dict(cr(), metadata={"name": "node-a", "generateName": "node-"}),
}


def cel_good_objects():
    objs = {f"GOOD:{k}": v for k, v in GOOD.items()}
    objs.update({f"LEFT_TO_DAEMON:{k}": v for k, (v, _) in LEFT_TO_DAEMON.items()})
    objs.update({f"CEL_GOOD:{k}": v for k, v in CEL_GOOD.items()})
    objs.update({f"sample:{p.name}": yaml.safe_load(p.read_text()) for p in SAMPLES})
    return objs


def cel_table_problems(node, schemas):
    """For each schema, what the real evaluation of its rules gets wrong on the tables: [] when
    every good object passes every rule and every CEL_BAD object fails exactly its rule."""
    good = cel_good_objects()
    bad = {f"CEL_BAD:{k}": v for k, (v, _, _) in CEL_BAD.items()}
    out = []
    for results, compile_errors in cel_evaluate_many(node, [(s, {**good, **bad})
                                                            for s in schemas]):
        problems = [f"rule does not compile at {where or 'the root'}: {message!r}: {error}"
                    for where, message, error in compile_errors]
        for name, res in results.items():
            if res["errors"]:
                problems.append(f"{name}: evaluation failed: {res['errors']}")
            expected = [] if name in good else \
                [cel_expected_refusal(CEL_BAD[name.split(":", 1)[1]][1])]
            if res["failed"] != expected:
                problems.append(f"{name}: refused by {res['failed']}, expected {expected}")
        out.append(problems)
    return out


@pytest.fixture(scope="module")
def cel_results(cel_node):
    objs = {**cel_good_objects(), **{f"CEL_BAD:{k}": v for k, (v, _, _) in CEL_BAD.items()}}
    return cel_evaluate(cel_node, SCHEMA, objs)


def test_cel_every_rule_compiles(cel_results):
    _, compile_errors = cel_results
    assert compile_errors == []
    assert len(crd_rule_messages(SCHEMA)) == len(CEL_RULES)
    # Messages tell the rules apart: a refusal is matched by its message.
    messages = [m for _, _, _, m in crd_rule_messages(SCHEMA)]
    assert len(set(messages)) == len(messages)


@pytest.mark.parametrize("name", list(cel_good_objects()))
def test_cel_good_object_passes_every_rule(name, cel_results):
    obj = cel_good_objects()[name]
    assert schema_errors(obj) == []
    res = cel_results[0][name]
    assert res == {"failed": [], "errors": []}


@pytest.mark.parametrize("name", list(CEL_BAD))
def test_cel_bad_object_fails_exactly_its_rule(name, cel_results):
    res = cel_results[0][f"CEL_BAD:{name}"]
    assert res["errors"] == []
    assert res["failed"] == [cel_expected_refusal(CEL_BAD[name][1])]


def test_cel_python_re_implementations_agree_with_the_real_rules(cel_results):
    """CEL_RULES' Python re-implementations (used where Node.js is missing) say what the real
    evaluation says, object by object."""
    objs = {**cel_good_objects(), **{f"CEL_BAD:{k}": v for k, (v, _, _) in CEL_BAD.items()}}
    by_rule = {rule: cel_expected_refusal(i) for i, (_, rule, _, _) in enumerate(CEL_RULES)}
    for name, obj in objs.items():
        python = [by_rule[rule] for rule, _ in cel_failures(obj, openapi_first=False)]
        assert python == cel_results[0][name]["failed"], name


def test_cel_name_rules_mean_unique_names_after_defaulting(cel_node):
    """The exhaustive check of test_the_two_name_rules_together_mean_unique_names_after_defaulting
    on the CRD's real name rules: every spec of up to three entries, ids 0..2 (or 10), each
    without a name or with one of a few that look like defaults."""
    import itertools
    names = [MISSING, "multinic0", "multinic1", "multinic01", "multinic10", "nic"]
    specs = []
    for n in range(1, 4):
        for ids in itertools.permutations([0, 1, 2, 10], n):
            for chosen in itertools.product(names, repeat=n):
                specs.append({"interfaces": [{"id": i} if nm is MISSING else {"id": i, "name": nm}
                                             for i, nm in zip(ids, chosen)]})
    assert len(specs) > 1000
    rules = [{"rule": rule, "message": message}
             for where, rule, _, message in crd_rule_messages(SCHEMA)
             if where == "spec" and "name" in rule and "macAddress" not in rule]
    assert len(rules) == 2
    [result] = cel_run(cel_node, [{"rules": rules, "cases": [{"self": spec} for spec in specs]}])
    assert result["compile"] == []
    for spec, res in zip(specs, result["cases"]):
        assert res["errors"] == [], (spec, res)
        assert (res["failed"] == []) == _unique(_default_name)(spec), (spec, res)


def mutated_schema(index, old, new):
    """SCHEMA with the first `old` in rule `index`'s text replaced by `new`; None when the rule
    has no `old`."""
    schema = copy.deepcopy(SCHEMA)
    where, rule, _, _ = crd_rule_messages(SCHEMA)[index]
    if old not in rule:
        return None
    for site, rules in cel_sites(schema):
        for r in rules:
            if site == where and r["rule"] == rule:
                r["rule"] = rule.replace(old, new, 1)
                return schema
    raise AssertionError(rule)


# Slips in the rule text that the Python re-implementations cannot see (only the pinned text
# differs): an operator turned around in each rule, a condition or a case fold lost, an index, a
# pattern, a macro, a function or a field name changed, a bracket added.
MUTATIONS = [(i, "==", "!=") for i in range(len(CEL_RULES))] + [
    (2, "has(b.name) && ", ""),
    (3, "substring(8)", "substring(9)"),
    (3, "[1-9]", "[0-9]"),
    (4, "lowerAscii", "lowerAsci"),
    (4, "b.macAddress.lowerAscii()", "b.macAddress"),
    (5, "b.address", "b.adress"),
    (1, "exists_one", "exists"),
    (0, "self.spec.nodeName", "self.spec.nodeName)"),
]


@pytest.fixture(scope="module")
def cel_mutation_problems(cel_node):
    """{None: cel_table_problems of the CRD as it is, mutation: those of its schema} (one Node.js
    run); a mutation whose text the rule no longer has is left out."""
    schemas = {None: SCHEMA}
    schemas.update({m: mutated_schema(*m) for m in MUTATIONS if mutated_schema(*m) is not None})
    return dict(zip(schemas, cel_table_problems(cel_node, list(schemas.values()))))


def test_cel_tables_pass_on_the_crd_as_it_is(cel_mutation_problems):
    assert cel_mutation_problems[None] == []


@pytest.mark.parametrize("index,old,new", MUTATIONS,
                         ids=[f"rule{i}:{o}->{n}" for i, o, n in MUTATIONS])
def test_cel_tables_catch_a_broken_rule(index, old, new, cel_mutation_problems):
    assert (index, old, new) in cel_mutation_problems, \
        f"rule {index} has no {old!r} to change: update MUTATIONS"
    assert cel_mutation_problems[(index, old, new)] != []
