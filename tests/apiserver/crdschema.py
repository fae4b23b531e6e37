"""A CRD's structural schema as the API server applies it: pruning, defaulting, validation.

Used by apiserver.py. What the real server does and this module does too:
- pruning of fields the schema does not declare (unless x-kubernetes-preserve-unknown-fields),
  reported as warnings, or refused under fieldValidation=Strict;
- dropping nulls of non-nullable fields, then applying `default`s;
- validation with the OpenAPI v3 keywords (through python3-jsonschema's Draft 4 validator,
  whose exclusiveMinimum/Maximum are booleans as in OpenAPI 3.0), patterns with Go RE2's
  meaning of `$` (end of text: a trailing newline does not match), the formats the API
  server knows (others, such as int32 and int64, are not checked), x-kubernetes-int-or-string,
  and x-kubernetes-list-type map/set uniqueness;
- field errors worded as k8s.io/apimachinery's field.Error (`spec.x: Invalid value: ...`);
- validation ratcheting on updates (ratchet(): errors on values unchanged from the stored
  object are dropped), matching list items by index.
Not done: CEL rules (x-kubernetes-validations), and the limits the real server puts on the
schema itself when a CRD is created.
"""
import base64
import copy
import datetime
import ipaddress
import json
import re

import jsonschema
from jsonschema import validators

# ObjectMeta's fields: anything else under metadata is dropped by the API server's decoder.
OBJECT_META_FIELDS = frozenset((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields"))


class Raw(str):
    """A bad value shown as it is (Go's %#v of a non-string), not quoted."""


class FieldError:
    """One field.Error of k8s.io/apimachinery: type, path, bad value and detail."""

    TYPES = {
        "invalid": ("FieldValueInvalid", "Invalid value", True),
        "type": ("FieldValueTypeInvalid", "Invalid value", True),
        "required": ("FieldValueRequired", "Required value", False),
        "notsupported": ("FieldValueNotSupported", "Unsupported value", True),
        "duplicate": ("FieldValueDuplicate", "Duplicate value", True),
        "toolong": ("FieldValueTooLong", "Too long", False),
        "toomany": ("FieldValueTooMany", "Too many", True),
        "forbidden": ("FieldValueForbidden", "Forbidden", False),
    }

    def __init__(self, kind, field, value=None, detail="", parts=None):
        self.kind, self.field, self.value, self.detail = kind, field, value, detail
        self.parts = parts  # the path as keys and indexes, where ratcheting can use it

    @property
    def reason(self):
        return self.TYPES[self.kind][0]

    @property
    def body(self):
        _, text, show = self.TYPES[self.kind]
        if show:
            text += ": " + show_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    @property
    def cause(self):
        return {"reason": self.reason, "message": self.body, "field": self.field}

    def __str__(self):
        return f"{self.field}: {self.body}"

    def __repr__(self):
        return f"FieldError({str(self)!r})"


def show_value(v):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def field_path(parts):
    """['spec', 'interfaces', 0, 'macAddress'] -> 'spec.interfaces[0].macAddress'"""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + p
    return out


# --- Go RE2 patterns in Python's re ----------------------------------------------------------

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


def re2_to_python(pattern):
    """Rewrites an RE2 pattern so that Python's re means the same: `$` and `\\z` are the end
    of the text, POSIX classes are spelled out, and literal characters in a class that Python
    would read as set operations are escaped."""
    out, i, n = [], 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append("\\Z" if pattern[i + 1] == "z" else pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            m = re.match(r"\[:(\^?)([a-z]+):\]", pattern[i:])
            if m and m.group(2) in _POSIX_CLASSES and not m.group(1):
                out.append(_POSIX_CLASSES[m.group(2)])
                i += m.end()
                continue
            if c == "]":
                in_class = False
                out.append(c)
            elif c in "[&~|":
                out.append("\\" + c)
            else:
                out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ']' is a literal
                out.append("\\]")
                i += 1
            continue
        out.append("\\Z" if c == "$" else c)
        i += 1
    return "".join(out)


# --- formats, as the API server's strfmt registry checks them ---------------------------------

def _mac(s):
    # Go's net.ParseMAC: 6, 8 or 20 bytes as xx:xx.., xx-xx.. or xxxx.xxxx..
    for sep, width in ((":", 2), ("-", 2), (".", 4)):
        groups = s.split(sep)
        if len(groups) > 1 and all(re.fullmatch("[0-9A-Fa-f]{%d}" % width, g) for g in groups):
            return len(groups) * width // 2 in (6, 8, 20)
    return False


def _ip(version):
    def check(s):
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            return False
        return ip.version == version
    return check


def _cidr(s):
    if "/" not in s:
        return False
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return True


def _hostname(s):
    if len(s) > 253:
        return False
    label = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
    return re.fullmatch(rf"{label}(\.{label})*\.?", s) is not None


def _datetime(s):
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?", s)
    if not m:
        return False
    try:
        datetime.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
    except ValueError:
        return False
    return True


def _date(s):
    try:
        datetime.date.fromisoformat(s)
    except ValueError:
        return False
    return re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) is not None


def _byte(s):
    try:
        base64.b64decode(s, validate=True)
    except ValueError:
        return False
    return True


def _uuid(version=None):
    v = "[0-9a-f]" if version is None else str(version)
    rx = re.compile(rf"[0-9a-f]{{8}}-[0-9a-f]{{4}}-{v}[0-9a-f]{{3}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}",
                    re.I)
    return lambda s: rx.fullmatch(s) is not None


def _duration(s):
    return re.fullmatch(r"([0-9]+(\.[0-9]*)?(ns|us|\u00b5s|ms|s|m|h|d|w))+", s) is not None


FORMATS = {
    "ipv4": _ip(4), "ipv6": _ip(6), "cidr": _cidr, "mac": _mac, "hostname": _hostname,
    "date-time": _datetime, "datetime": _datetime, "date": _date, "byte": _byte,
    "uuid": _uuid(), "uuid3": _uuid(3), "uuid4": _uuid(4), "uuid5": _uuid(5),
    "duration": _duration,
}


def _format_checker():
    checker = jsonschema.FormatChecker(formats=())
    for name, fn in FORMATS.items():
        checker.checks(name)(lambda v, fn=fn: not isinstance(v, str) or fn(v))
    return checker


# --- schema translation to JSON Schema Draft 4 ------------------------------------------------

_ANNOTATIONS = {"description", "default", "example", "externalDocs", "title", "nullable",
                "discriminator", "readOnly", "writeOnly", "xml", "deprecated"}


def to_json_schema(s):
    """The JSON Schema (Draft 4) for one OpenAPI v3 schema of a CRD."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k.startswith("x-kubernetes-") or k in _ANNOTATIONS:
            continue
        if k == "properties":
            out[k] = {p: to_json_schema(sub) for p, sub in v.items()}
        elif k in ("items", "not") or (k == "additionalProperties" and isinstance(v, dict)):
            out[k] = to_json_schema(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [to_json_schema(x) for x in v]
        elif k == "pattern":
            out[k] = re2_to_python(v)
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"anyOf": [{"type": "integer"}, {"type": "string"}]})
    if s.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


def _required(validator, required, instance, schema):
    if validator.is_type(instance, "object"):
        for p in required:
            if p not in instance:
                yield jsonschema.ValidationError(p)  # the message carries the missing name


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not re.search(pattern, instance):
        yield jsonschema.ValidationError(f"does not match {pattern!r}")


_Validator = validators.extend(jsonschema.Draft4Validator,
                               {"required": _required, "pattern": _pattern})


def _original(schema, parts):
    """The CRD's own sub-schema at a jsonschema schema_path (for the RE2 pattern text)."""
    s = schema
    for p in parts:
        if isinstance(s, dict) and p in s:
            s = s[p]
        elif isinstance(s, list) and isinstance(p, int) and p < len(s):
            s = s[p]
        else:
            return None
    return s


def _json_type(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(v), "?")


def _translate(e, prefix, crd_schema):
    """One jsonschema error as the field.Error the API server would give."""
    parts = list(prefix) + list(e.absolute_path)
    path = field_path(parts)
    where = f"{path} in body"
    if e.validator == "required":
        return FieldError("required", field_path(parts + [e.message]), parts=parts + [e.message])
    err = _translate_value(e, path, where, crd_schema)
    err.parts = parts
    return err


def _translate_value(e, path, where, crd_schema):
    v, val, inst = e.validator, e.validator_value, e.instance
    if v == "type":
        want = val if isinstance(val, str) else [t for t in val if t != "null"][0]
        return FieldError("type", path, _json_type(inst),
                          f'{where} must be of type {want}: "{_json_type(inst)}"')
    if v == "enum":
        allowed = ", ".join(json.dumps(x) for x in val if x is not None)
        return FieldError("notsupported", path, inst, f"supported values: {allowed}")
    if v == "pattern":
        orig = _original(crd_schema, list(e.relative_schema_path)) if crd_schema else None
        shown = orig if isinstance(orig, str) else val
        return FieldError("invalid", path, inst, f"{where} should match '{shown}'")
    if v == "format":
        return FieldError("invalid", path, inst, f'{where} must be of type {val}: "{inst}"')
    if v == "maxLength":
        return FieldError("toolong", path, inst, f"may not be longer than {val}")
    if v == "minLength":
        return FieldError("invalid", path, inst, f"{where} should be at least {val} chars long")
    if v == "maxItems":
        return FieldError("toomany", path, len(inst), f"must have at most {val} items")
    if v == "minItems":
        return FieldError("invalid", path, len(inst), f"{where} should have at least {val} items")
    if v == "maxProperties":
        return FieldError("toomany", path, len(inst), f"must have at most {val} items")
    if v == "minProperties":
        return FieldError("invalid", path, len(inst),
                          f"{where} should have at least {val} properties")
    if v in ("minimum", "maximum"):
        exclusive = e.schema.get("exclusiveMinimum" if v == "minimum" else "exclusiveMaximum")
        word = "greater" if v == "minimum" else "less"
        rel = f"{word} than" if exclusive else f"{word} than or equal to"
        return FieldError("invalid", path, inst, f"{where} should be {rel} {val}")
    if v == "multipleOf":
        return FieldError("invalid", path, inst, f"{where} should be a multiple of {val}")
    if v == "uniqueItems":
        return FieldError("duplicate", path, inst, "")
    return FieldError("invalid", path, inst, f"{where}: {e.message}")


# --- the schema -------------------------------------------------------------------------------

class Schema:
    """One version's openAPIV3Schema of a CRD."""

    def __init__(self, openapi):
        self.openapi = openapi or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        root = to_json_schema(self.openapi)
        props = dict(root.get("properties", {}))
        for k in ("metadata", "status", "apiVersion", "kind"):
            props.pop(k, None)
        main = dict(root, properties=props)
        main["required"] = [r for r in root.get("required", [])
                            if r not in ("metadata", "status", "apiVersion", "kind")]
        if not main["required"]:
            del main["required"]
        checker = _format_checker()
        _Validator.check_schema(main)
        self._main = _Validator(main, format_checker=checker)
        st = self.openapi.get("properties", {}).get("status")
        self._status_orig = st
        self._status = _Validator(to_json_schema(st), format_checker=checker) if st else None

    # Pruning and defaulting walk the CRD's own schema.
    def prune(self, obj):
        """Drops undeclared fields and non-nullable nulls; returns the dropped fields' paths."""
        dropped = []
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for k in list(meta):
                if k not in OBJECT_META_FIELDS:
                    del meta[k]
                    dropped.append(f"metadata.{k}")
        props = self.openapi.get("properties", {})
        for k in list(obj):
            if k in ("apiVersion", "kind", "metadata"):
                continue
            if k in props:
                obj[k] = _prune(obj[k], props[k], [k], dropped)
            elif not self.openapi.get("x-kubernetes-preserve-unknown-fields"):
                del obj[k]
                dropped.append(k)
        _drop_nulls(obj, self.openapi, skip=("apiVersion", "kind", "metadata"))
        return dropped

    def default(self, obj):
        _default(obj, self.openapi, top=True)

    def validate(self, obj, part="main"):
        """Field errors of the object (part 'main': all but metadata and status; 'status')."""
        if part == "status":
            if self._status is None or "status" not in obj:
                return []
            errs = [_translate(e, ["status"], self._status_orig)
                    for e in self._status.iter_errors(obj["status"])]
            errs += _list_types(obj["status"], self._status_orig, ["status"])
        else:
            body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
            errs = [_translate(e, [], self.openapi) for e in self._main.iter_errors(body)]
            props = self.openapi.get("properties", {})
            for k, v in body.items():
                if k in props and k not in ("apiVersion", "kind"):
                    errs += _list_types(v, props[k], [k])
        uniq = {str(e): e for e in errs}
        return [uniq[k] for k in sorted(uniq)]


_MISSING = object()


def _at(obj, parts):
    for p in parts:
        if isinstance(p, int):
            if not isinstance(obj, list) or p >= len(obj):
                return _MISSING
        elif not isinstance(obj, dict) or p not in obj:
            return _MISSING
        obj = obj[p]
    return obj


def ratchet(errors, new, old):
    """Validation ratcheting (Kubernetes 1.30 and later): on an update, an error about a value
    that is the same in the stored object is dropped, so that an object stored before its
    schema got stricter can still be changed elsewhere."""
    return [e for e in errors
            if e.parts is None or _at(new, e.parts) != _at(old, e.parts)
            or (e.kind == "duplicate" and _at(new, e.parts[:-1]) != _at(old, e.parts[:-1]))]


def _prune(value, s, path, dropped):
    if not isinstance(s, dict):
        return value
    if isinstance(value, dict):
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        preserve = s.get("x-kubernetes-preserve-unknown-fields") or addl is True
        embedded = s.get("x-kubernetes-embedded-resource")
        for k in list(value):
            if k in props:
                value[k] = _prune(value[k], props[k], path + [k], dropped)
            elif isinstance(addl, dict):
                value[k] = _prune(value[k], addl, path + [k], dropped)
            elif not preserve and not (embedded and k in ("apiVersion", "kind", "metadata")):
                del value[k]
                dropped.append(field_path(path + [k]))
        _drop_nulls(value, s)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        return [_prune(x, s["items"], path + [i], dropped) for i, x in enumerate(value)]
    return value


def _drop_nulls(value, s, skip=()):
    """Nulls of non-nullable fields without a default go (those with one get it)."""
    props = s.get("properties") or {}
    for k in list(value):
        sub = props[k] if k in props else s.get("additionalProperties")
        if k not in skip and value[k] is None and isinstance(sub, dict) \
                and not sub.get("nullable") and "default" not in sub:
            del value[k]


def _default(value, s, top=False):
    if not isinstance(s, dict):
        return
    if isinstance(value, dict):
        props = s.get("properties") or {}
        for k, sub in props.items():
            if top and k == "metadata":
                continue
            if isinstance(sub, dict) and "default" in sub and (
                    k not in value or (value[k] is None and not sub.get("nullable"))):
                value[k] = copy.deepcopy(sub["default"])
        for k, v in value.items():
            if top and k == "metadata":
                continue
            if k in props:
                _default(v, props[k])
            elif isinstance(s.get("additionalProperties"), dict):
                _default(v, s["additionalProperties"])
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for x in value:
            _default(x, s["items"])


def _list_types(value, s, path):
    """Duplicate entries in x-kubernetes-list-type map (by key) and set lists."""
    errs = []
    if not isinstance(s, dict):
        return errs
    if isinstance(value, list):
        kind = s.get("x-kubernetes-list-type")
        items = s.get("items") if isinstance(s.get("items"), dict) else {}
        seen = {}
        for i, x in enumerate(value):
            if kind == "map" and isinstance(x, dict):
                keys = s.get("x-kubernetes-list-map-keys", [])
                ident = {k: x.get(k, (items.get("properties", {}).get(k) or {}).get("default"))
                         for k in keys}
                token = json.dumps(ident, sort_keys=True)
                if token in seen:
                    errs.append(FieldError("duplicate", field_path(path + [i]), Raw(
                        "map[string]interface {}{" + ", ".join(
                            f"{json.dumps(k)}:{show_value(v)}" for k, v in ident.items()) + "}"),
                        parts=path + [i]))
                seen[token] = i
            elif kind == "set":
                token = json.dumps(x, sort_keys=True)
                if token in seen:
                    errs.append(FieldError("duplicate", field_path(path + [i]), x,
                                           parts=path + [i]))
                seen[token] = i
            errs += _list_types(x, items, path + [i])
    elif isinstance(value, dict):
        props = s.get("properties") or {}
        for k, v in value.items():
            if k in props:
                errs += _list_types(v, props[k], path + [k])
            elif isinstance(s.get("additionalProperties"), dict):
                errs += _list_types(v, s["additionalProperties"], path + [k])
    return errs
