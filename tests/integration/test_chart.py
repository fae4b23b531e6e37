"""The Helm chart (charts/multinic-bridge) and the bridge's container build (bridge/Containerfile).

No helm binary, no cluster and no container engine are needed:
- values.yaml is checked against values.schema.json (Draft 7, as helm does before rendering),
  and bad values are refused;
- the templates are rendered by the small renderer below, which knows the subset of Go templates
  and Sprig that the chart keeps to (listed at the top of templates/_helpers.tpl) and refuses
  the rest; like helm, it reads numbers in values as floats and prints them as Go's %v does. The
  rendered YAML is then checked: the DaemonSet's security settings, the socket mount, the
  environment, the probes, the arguments, the RBAC rules, the optional Service and
  ServiceMonitor;
- every .Values path the templates read exists in values.yaml and in the schema, and every value
  is read;
- the chart's CRD is the top-level one, byte for byte;
- the Containerfile's structure (it is not built: no engine here): two stages, the build stage
  installing the package of every dependency() in the meson files, the runtime stage the package
  of every library the built bridge links and no compiler, a numeric non-root USER equal to the
  chart's default, the entrypoint.
With a `helm` binary on the PATH, `helm lint` and `helm template` run too, and helm's rendering
must equal the renderer's. No root, no network.
"""
import copy
import json
import math
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO

CHART = REPO / "charts" / "multinic-bridge"
TEMPLATES = CHART / "templates"
CONTAINERFILE = REPO / "bridge" / "Containerfile"
RELEASE = {"Name": "multinic-bridge", "Namespace": "multinic-system", "Service": "Helm"}
NAMESPACED_KINDS = {"DaemonSet", "ServiceAccount", "Role", "RoleBinding", "Service",
                    "ServiceMonitor"}
EXPECTED_RULES = [
    {"apiGroups": ["multinic.io"], "resources": ["multinicnodeconfigs"],
     "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["multinic.io"], "resources": ["multinicnodeconfigs/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def load_yaml(path):
    return yaml.safe_load(Path(path).read_text())


VALUES = load_yaml(CHART / "values.yaml")
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
CHART_META = load_yaml(CHART / "Chart.yaml")


# --- a renderer for the chart's subset of Go templates --------------------------------------------

class TemplateError(Exception):
    pass


def _is_space(c):
    return c in " \t\r\n"


def lex(text, name):
    """Text and actions, with the trim markers applied: [("text", s) | ("action", s)]."""
    out, pos = [], 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(["text", text[pos:]])
            return out
        out.append(["text", text[pos:start]])
        i = start + 2
        trim_left = text[i:i + 1] == "-" and _is_space(text[i + 1:i + 2])
        if trim_left:
            i += 2
            out[-1][1] = out[-1][1].rstrip(" \t\r\n")
        rest = text[i:].lstrip(" \t\r\n") if trim_left else text[i:]
        if rest.startswith("/*"):
            body_start = i + (len(text[i:]) - len(rest))
            end = text.find("*/", body_start + 2)
            if end < 0:
                raise TemplateError(f"{name}: unclosed comment")
            j = end + 2
            trim_right = text.startswith(" -}}", j)
            if not trim_right and not text.startswith("}}", j):
                raise TemplateError(f"{name}: comment ends before closing delimiter")
            pos = j + (4 if trim_right else 2)
        else:
            j, quote = i, None
            while j < len(text):
                c = text[j]
                if quote:
                    if c == "\\" and quote == '"':
                        j += 1
                    elif c == quote:
                        quote = None
                elif c in "\"`":
                    quote = c
                elif text.startswith("}}", j):
                    break
                j += 1
            else:
                raise TemplateError(f"{name}: unclosed action")
            inner = text[i:j]
            trim_right = len(inner) >= 2 and inner[-1] == "-" and _is_space(inner[-2])
            if trim_right:
                inner = inner[:-1]
            out.append(["action", inner.strip()])
            pos = j + 2
        if trim_right:
            text_after = text[pos:]
            pos += len(text_after) - len(text_after.lstrip(" \t\r\n"))


TOKEN = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?[0-9]+)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<other>\S)
)""", re.X)
FUNCTIONS = {"include", "toYaml", "nindent", "indent", "quote", "default", "printf", "trunc",
             "trimSuffix", "contains", "int"}
KEYWORDS = {"if", "else", "end", "with", "define"}
UNSUPPORTED = {"range", "template", "block", "break", "continue"}


def tokenize(action):
    tokens = []
    for m in TOKEN.finditer(action):
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "other":
            raise TemplateError(f"unsupported syntax {value!r} in {{{{ {action} }}}}")
        if kind == "str":
            value = json.loads(value)
            kind = "lit"
        elif kind == "raw":
            value, kind = value[1:-1], "lit"
        elif kind == "num":
            value, kind = int(value), "lit"
        elif kind == "ident" and value in ("true", "false"):
            value, kind = value == "true", "lit"
        elif kind == "ident" and value in UNSUPPORTED:
            raise TemplateError(f"unsupported action {value!r}")
        elif kind == "ident" and value not in FUNCTIONS and value not in KEYWORDS:
            raise TemplateError(f"unknown function {value!r}")
        tokens.append((kind, value))
    if action.strip() and not tokens:
        raise TemplateError(f"empty action {{{{ {action} }}}}")
    return tokens


def parse_pipeline(tokens):
    """[[token, ...], ...]: commands separated by |; a command is a function and its
    arguments, or one operand."""
    if not tokens:
        raise TemplateError("missing pipeline")
    commands, current = [], []
    for t in tokens:
        if t[0] == "pipe":
            commands.append(current)
            current = []
        else:
            current.append(t)
    commands.append(current)
    for i, c in enumerate(commands):
        if not c:
            raise TemplateError("empty command in pipeline")
        if c[0][0] != "ident" and len(c) > 1:
            raise TemplateError(f"{c[0][1]!r} is not a function")
        if i > 0 and c[0][0] != "ident":
            raise TemplateError("only a function can take a piped value")
        if any(t[0] == "ident" for t in c[1:]):
            raise TemplateError("a function as an argument needs parentheses: unsupported")
    return commands


def parse(text, name, defines):
    """The template's tree; `define`s go to defines. Nodes: ("text", s), ("out", pipeline),
    ("if", [(pipeline, body), ...], else_body), ("with", pipeline, body, else_body)."""
    root = []
    stack = [("root", root, None)]
    for kind, value in lex(text, name):
        body = stack[-1][1]
        if kind == "text":
            if value:
                body.append(("text", value))
            continue
        tokens = tokenize(value)
        head = tokens[0][1] if tokens[0][0] == "ident" else None
        if head == "if" or head == "with":
            node = [head, [(parse_pipeline(tokens[1:]), [])], None]
            body.append(node)
            stack.append((head, node[1][0][1], node))
        elif head == "else":
            what, _, node = stack[-1]
            if what not in ("if", "with") or node[2] is not None:
                raise TemplateError(f"{name}: else outside if/with")
            stack.pop()
            if len(tokens) > 1 and tokens[1] == ("ident", "if") and what == "if":
                node[1].append((parse_pipeline(tokens[2:]), []))
                stack.append((what, node[1][-1][1], node))
            elif len(tokens) == 1:
                node[2] = []
                stack.append((what, node[2], node))
            else:
                raise TemplateError(f"{name}: unsupported else form {value!r}")
        elif head == "end":
            if len(stack) == 1 or len(tokens) != 1:
                raise TemplateError(f"{name}: unexpected end")
            what, _, node = stack.pop()
            if what == "define":
                defines[node[0]] = node[1]
        elif head == "define":
            if len(tokens) != 2 or tokens[1][0] != "lit" or not isinstance(tokens[1][1], str):
                raise TemplateError(f"{name}: define needs a name")
            if len(stack) != 1:
                raise TemplateError(f"{name}: define inside a block")
            node = (tokens[1][1], [])
            stack.append(("define", node[1], node))
        else:
            body.append(("out", parse_pipeline(tokens)))
    if len(stack) != 1:
        raise TemplateError(f"{name}: missing end for {stack[-1][0]}")
    return root


def go_float(v):
    """Go's %v of a float64 (strconv 'g' with the shortest digits): the exponent form when the
    exponent is below -4 or from 6 up, so that helm prints a value of 1000000 as 1e+06."""
    if v == 0:
        return "0"
    if math.isinf(v) or math.isnan(v):
        return "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    _, digit_tuple, exponent = Decimal(repr(abs(v))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent            # where the decimal point goes in digits
    exp10 = point - 1
    sign = "-" if v < 0 else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exp10 >= 0 else '-'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def strval(v):
    """A value as text the way Go's %v (and Sprig's strval) writes it."""
    if v is None:
        raise TemplateError("a value is nil (missing in values.yaml?)")
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    raise TemplateError(f"printing a {type(v).__name__} ({v!r}) would write Go's map[...] text")


def truth(v):
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


def helmify(v):
    """Values as helm has them after reading YAML through JSON: every number a float64."""
    if isinstance(v, dict):
        return {k: helmify(x) for k, x in v.items()}
    if isinstance(v, list):
        return [helmify(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def unhelmify(v):
    """For toYaml: Go's JSON writes an integral float64 below 1e21 without a fraction."""
    if isinstance(v, dict):
        return {k: unhelmify(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unhelmify(x) for x in v]
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    return v


def go_quote(s):
    return json.dumps(s, ensure_ascii=False)


def go_printf(fmt, *args):
    args = list(args)

    def verb(m):
        if m.group(0) == "%%":
            return "%"
        if not args:
            raise TemplateError(f"printf {fmt!r}: missing argument")
        a = args.pop(0)
        if m.group(1) == "d":
            if isinstance(a, bool) or not isinstance(a, int):
                raise TemplateError(f"printf %d of {a!r}: Go would write %!d(...)")
            return str(a)
        if m.group(1) == "s" and not isinstance(a, str):
            raise TemplateError(f"printf %s of {a!r}: Go would write %!s(...)")
        return strval(a)
    out = re.sub(r"%%|%([sdv])", verb, fmt)
    if re.search(r"%[^sdv%]", fmt):
        raise TemplateError(f"printf {fmt!r}: unsupported verb")
    if args:
        raise TemplateError(f"printf {fmt!r}: extra arguments")
    return out


def to_int(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            return 0
    return 0


def indent_text(n, s):
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


def to_yaml(v):
    return yaml.safe_dump(unhelmify(v), default_flow_style=False, sort_keys=True).rstrip("\n")


class Chart:
    """The chart's templates, parsed once."""

    def __init__(self, directory=CHART):
        self.defines = {}
        self.templates = {}
        for path in sorted((directory / "templates").iterdir()):
            if path.suffix in (".yaml", ".tpl", ".txt"):
                self.templates[path.name] = parse(path.read_text(), path.name, self.defines)

    def render_file(self, name, values, release=RELEASE):
        root = {"Values": helmify(values), "Release": dict(release),
                "Chart": {"Name": CHART_META["name"], "Version": CHART_META["version"],
                          "AppVersion": CHART_META["appVersion"]}}
        return Renderer(self.defines, root).render(self.templates[name], root)

    def render(self, values, release=RELEASE):
        """{file name: [objects]} of every manifest template (not NOTES.txt, not partials)."""
        out = {}
        for name in self.templates:
            if name.startswith("_") or not name.endswith(".yaml"):
                continue
            text = self.render_file(name, values, release)
            out[name] = [d for d in yaml.safe_load_all(text) if d is not None]
        return out


class Renderer:
    def __init__(self, defines, root):
        self.defines = defines
        self.root = root
        self.depth = 0

    def render(self, nodes, dot):
        out = []
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "out":
                out.append(strval(self.pipeline(node[1], dot)))
            elif kind == "if":
                for pipeline, body in node[1]:
                    if truth(self.pipeline(pipeline, dot)):
                        out.append(self.render(body, dot))
                        break
                else:
                    if node[2] is not None:
                        out.append(self.render(node[2], dot))
            elif kind == "with":
                value = self.pipeline(node[1][0][0], dot)
                if truth(value):
                    out.append(self.render(node[1][0][1], value))
                elif node[2] is not None:
                    out.append(self.render(node[2], dot))
        return "".join(out)

    def operand(self, token, dot):
        kind, value = token
        if kind == "lit":
            return value
        if kind == "field":
            if value == ".":
                return dot
            # As helm: a key missing from a map is nil (false to if and with; printing it is an
            # error here, where helm would print nothing); a field of nil or of a non-map fails.
            current = dot
            for part in value[1:].split("."):
                if not isinstance(current, dict):
                    raise TemplateError(f"{value}: cannot take {part!r} of {current!r}")
                current = current.get(part)
            return current
        raise TemplateError(f"unexpected {value!r}")

    def pipeline(self, commands, dot):
        value, piped = None, False
        for command in commands:
            if command[0][0] == "ident":
                args = [self.operand(t, dot) for t in command[1:]]
                if piped:
                    args.append(value)
                value = self.call(command[0][1], args)
            else:
                value = self.operand(command[0], dot)
            piped = True
        return value

    def call(self, name, args):
        arity = {"include": 2, "toYaml": 1, "nindent": 2, "indent": 2, "default": 2,
                 "trunc": 2, "trimSuffix": 2, "contains": 2, "int": 1}
        if name in arity and len(args) != arity[name]:
            raise TemplateError(f"{name} takes {arity[name]} arguments, got {len(args)}")
        if name == "include":
            if args[1] is not self.root:
                raise TemplateError("include with another dot than the root: unsupported")
            if args[0] not in self.defines:
                raise TemplateError(f"no template {args[0]!r}")
            self.depth += 1
            if self.depth > 50:
                raise TemplateError("include recursion")
            try:
                return self.render(self.defines[args[0]], args[1])
            finally:
                self.depth -= 1
        if name == "toYaml":
            return to_yaml(args[0])
        if name in ("nindent", "indent"):
            n, s = to_int(args[0]), strval(args[1])
            return ("\n" if name == "nindent" else "") + indent_text(n, s)
        if name == "quote":
            return " ".join(go_quote(strval(a)) for a in args if a is not None)
        if name == "default":
            return args[1] if truth(args[1]) else args[0]
        if name == "printf":
            return go_printf(*args)
        if name == "trunc":
            n, s = to_int(args[0]), strval(args[1])
            return s[:n] if n >= 0 else s[n:]
        if name == "trimSuffix":
            s = strval(args[1])
            return s[:-len(args[0])] if args[0] and s.endswith(args[0]) else s
        if name == "contains":
            return strval(args[0]) in strval(args[1])
        if name == "int":
            return to_int(args[0])
        raise TemplateError(f"unknown function {name!r}")


CHART_TEMPLATES = Chart()


def merged(overrides):
    """values.yaml with overrides laid over it, as `helm -f` does (maps merge, the rest
    replaces; None deletes)."""
    def merge(base, over):
        for k, v in over.items():
            if v is None:
                base.pop(k, None)
            elif isinstance(v, dict) and isinstance(base.get(k), dict):
                merge(base[k], v)
            else:
                base[k] = copy.deepcopy(v)
        return base
    return merge(copy.deepcopy(VALUES), overrides or {})


def render(overrides=None, release=RELEASE):
    """The chart's objects for values.yaml plus overrides, after the schema accepted them."""
    values = merged(overrides)
    jsonschema.Draft7Validator(SCHEMA).validate(values)
    return [obj for objs in CHART_TEMPLATES.render(values, release).values() for obj in objs]


def one(objects, kind):
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def bridge_container(objects):
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    containers = pod["containers"]
    assert [c["name"] for c in containers] == ["bridge"]
    assert "initContainers" not in pod
    return containers[0]


def effective_security(pod_spec, container):
    """The container's security settings with the pod's filled in, as the kubelet merges them."""
    merged_context = dict(pod_spec.get("securityContext", {}))
    merged_context.update(container.get("securityContext", {}))
    return merged_context


# --- the renderer itself --------------------------------------------------------------------------

def render_text(text, values=None):
    defines = {}
    tree = parse(text, "t", defines)
    root = {"Values": helmify(values or {}), "Release": dict(RELEASE),
            "Chart": {"Name": "mychart", "Version": "1", "AppVersion": "2"}}
    return Renderer(defines, root).render(tree, root)


@pytest.mark.parametrize("text,values,expected", [
    ("a {{- \" b \" -}}  c", {}, "a b c"),
    ("{{/* comment */}}x\n{{- /* trimmed */ -}}\ny", {}, "xy"),
    ("{{ if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end }}", {"a": 0, "b": "x"}, "B"),
    ("{{ with .Values.m }}{{ toYaml . }}{{ end }}", {"m": {"b": 2, "a": [1]}}, "a:\n- 1\nb: 2"),
    ("{{ with .Values.m }}x{{ end }}", {"m": {}}, ""),
    ("k:{{ toYaml .Values.m | nindent 2 }}", {"m": {"a": 1}}, "k:\n  a: 1"),
    ("{{ .Values.s | default .Chart.Name | quote }}", {"s": ""}, '"mychart"'),
    ("{{ printf \"%s-%s\" .Release.Name \"x\" | trunc 5 | trimSuffix \"-\" }}", {},
     "multi"),
    ("{{ .Values.n }} {{ .Values.big }} {{ .Values.big | int }} {{ .Values.b }}",
     {"n": 9464, "big": 4294967294, "b": False}, "9464 4.294967294e+09 4294967294 false"),
    ("{{ if contains .Chart.Name .Release.Name }}y{{ end }}", {}, ""),
    ("{{ if contains \"bridge\" .Release.Name }}y{{ end }}", {}, "y"),
])
def test_renderer_renders_the_subset_as_helm_does(text, values, expected):
    assert render_text(text, values) == expected


def test_renderer_treats_a_missing_key_as_nil():
    assert render_text("{{ if .Values.a.b }}x{{ end }}{{ with .Values.a.b }}y{{ end }}",
                       {"a": {}}) == ""
    with pytest.raises(TemplateError, match="nil"):
        render_text("{{ .Values.a.b }}", {"a": {}})
    with pytest.raises(TemplateError, match="cannot take"):
        render_text("{{ if .Values.a.b.c }}x{{ end }}", {"a": {}})


@pytest.mark.parametrize("value,text", [
    (0.0, "0"), (9464.0, "9464"), (100000.0, "100000"), (1000000.0, "1e+06"),
    (123456789.0, "1.23456789e+08"), (0.5, "0.5"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (-2.5, "-2.5"), (1e21, "1e+21"),
])
def test_numbers_print_as_go_prints_a_float64(value, text):
    assert go_float(value) == text


@pytest.mark.parametrize("text,values", [
    ("{{ range .Values.l }}x{{ end }}", {"l": [1]}),
    ("{{ default (.Values.a) .Values.b }}", {"a": 1, "b": 2}),
    ("{{ $x := .Values.a }}", {"a": 1}),
    ("{{ .Values.missing }}", {}),
    ("{{ upper .Values.a }}", {"a": "x"}),
    ("{{ .Values.m }}", {"m": {"a": 1}}),
    ("{{ if .Values.a }}x", {"a": 1}),
    ("{{ printf \"%s\" .Values.n }}", {"n": 1}),
    ("{{ include \"nope\" . }}", {}),
])
def test_renderer_refuses_what_it_does_not_know(text, values):
    with pytest.raises(TemplateError):
        render_text(text, values)


# --- Chart.yaml, values and schema ----------------------------------------------------------------

def test_chart_metadata():
    assert CHART_META["apiVersion"] == "v2"
    assert CHART_META["name"] == "multinic-bridge"
    assert CHART_META["type"] == "application"
    assert str(CHART_META["version"]) == "0.1.0"
    assert str(CHART_META["appVersion"]) == "0.1.0"
    assert CHART_META["description"].strip()
    assert "cp crds/multinicnodeconfigs.yaml" in (CHART / "Chart.yaml").read_text(), \
        "Chart.yaml says how to refresh the CRD copy"


def test_values_satisfy_the_schema():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(VALUES)


def sysusers_user(root):
    """(uid, gid) of multinic-bridge as systemd-sysusers creates it from the shipped entry in
    the scratch root (whose /etc/passwd and /etc/group may exist already)."""
    conf = root / "usr/lib/sysusers.d/multinic-bridge.conf"
    conf.parent.mkdir(parents=True)
    conf.write_bytes((REPO / "units/multinic-bridge.sysusers").read_bytes())
    (root / "etc").mkdir(exist_ok=True)
    p = subprocess.run(["systemd-sysusers", f"--root={root}", conf.name], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    (user,) = [l.split(":") for l in (root / "etc/passwd").read_text().splitlines()
               if l.startswith("multinic-bridge:")]
    return int(user[2]), int(user[3]), p.stderr


def test_default_bridge_user_is_the_one_the_package_creates(tmp_path):
    """The pods run as the uid and gid that the multinicd package gives multinic-bridge on a host
    where they are free, so that the chart's default is the user polkit allows."""
    uid, gid, _ = sysusers_user(tmp_path)

    assert VALUES["bridgeUser"] == {"uid": uid, "gid": gid}
    assert 0 < uid < 1000 and 0 < gid < 1000, "a system uid and gid"
    _, (_, runtime) = containerfile_stages()
    assert runtime["args"]["BRIDGE_UID"] == str(uid) and runtime["args"]["BRIDGE_GID"] == str(gid)


def test_taken_bridge_uid_falls_back_to_a_free_one_as_deploy_md_says(tmp_path):
    """What docs/deploy.md tells the operator to look for on a node where the uid was taken."""
    wanted = VALUES["bridgeUser"]["uid"]
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(f"other:x:{wanted}:{wanted}::/:/usr/sbin/nologin\n")
    (tmp_path / "etc/group").write_text(f"other:x:{wanted}:\n")

    uid, _, log = sysusers_user(tmp_path)

    assert uid != wanted
    message = f"Suggested user ID {wanted} for multinic-bridge already used."
    assert message in log
    assert message in (REPO / "docs/deploy.md").read_text()
    assert f"id -u multinic-bridge; id -g multinic-bridge      # {wanted} and {wanted}" in \
        (REPO / "docs/deploy.md").read_text()


def test_defaults():
    assert VALUES["dbus"]["socketPath"] == "/run/dbus/system_bus_socket"
    assert VALUES["metrics"]["port"] == 9464
    assert VALUES["resources"] == {"requests": {"cpu": "10m", "memory": "16Mi"},
                                   "limits": {"cpu": "100m", "memory": "64Mi"}}
    assert VALUES["priorityClassName"] == "system-node-critical"
    assert VALUES["tolerations"] == [{"operator": "Exists"}]
    assert VALUES["metrics"]["service"]["enabled"] is False
    assert VALUES["metrics"]["serviceMonitor"]["enabled"] is False
    text = (CHART / "values.yaml").read_text()
    assert "polkit" in text and "multinic-bridge" in text, \
        "values.yaml explains that the uid must be the host's multinic-bridge user"


def test_schema_refuses_unknown_keys_everywhere_but_free_maps():
    """Every object in the schema closes its keys, except the maps whose keys are the user's
    (labels, annotations, resources' names) and the affinity, passed through as is."""
    free = {"affinity"}

    def walk(schema, path):
        if schema.get("type") == "object" and path.split(".")[-1] not in free:
            assert "additionalProperties" in schema, f"{path or 'the root'} is open"
        for key, sub in schema.get("properties", {}).items():
            walk(sub, f"{path}.{key}" if path else key)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], path + "[]")
    walk(SCHEMA, "")


BAD_VALUES = {
    "unknown top-level key": {"nodeSelectr": {}},
    "unknown nested key": {"metrics": {"prot": 9464}},
    "unknown key in image": {"image": {"tags": "1"}},
    "unknown key in a toleration": {"tolerations": [{"operater": "Exists"}]},
    "port as a string": {"metrics": {"port": "9464"}},
    "port 0 (no endpoint, probes fail)": {"metrics": {"port": 0}},
    "port below 1024": {"metrics": {"port": 80}},
    "port above 65535": {"metrics": {"port": 70000}},
    "port as a float": {"metrics": {"port": 9464.5}},
    "uid 0": {"bridgeUser": {"uid": 0}},
    "uid as a string": {"bridgeUser": {"uid": "999"}},
    "gid negative": {"bridgeUser": {"gid": -1}},
    "resync negative": {"resync": -1},
    "resync above a day": {"resync": 86401},
    "watch timeout 0": {"watchTimeout": 0},
    "watch timeout as a string": {"watchTimeout": "300"},
    "debug as a string": {"debug": "yes"},
    "pull policy misspelt": {"image": {"pullPolicy": "Sometimes"}},
    "empty repository": {"image": {"repository": ""}},
    "relative socket path": {"dbus": {"socketPath": "run/dbus/system_bus_socket"}},
    "socket path with a comma (a D-Bus address separator)": {"dbus": {"socketPath": "/run/a,b"}},
    "toleration operator misspelt": {"tolerations": [{"operator": "exists"}]},
    "tolerations as a map": {"tolerations": {"operator": "Exists"}},
    "cpu request not a quantity": {"resources": {"requests": {"cpu": "lots"}}},
    "unknown key in resources": {"resources": {"request": {"cpu": "10m"}}},
    "maxUnavailable 0": {"updateStrategy": {"maxUnavailable": 0}},
    "maxUnavailable 0%": {"updateStrategy": {"maxUnavailable": "0%"}},
    "maxUnavailable not a percentage": {"updateStrategy": {"maxUnavailable": "ten"}},
    "ServiceMonitor without the Service": {"metrics": {"serviceMonitor": {"enabled": True}}},
    "scrape interval not a duration": {"metrics": {"serviceMonitor": {"interval": "often"}}},
    "pod annotation value not a string": {"podAnnotations": {"a": 1}},
    "nodeSelector value not a string": {"nodeSelector": {"multinic": True}},
    "image pull secret without a name": {"imagePullSecrets": [{}]},
    "image pull secret as a string": {"imagePullSecrets": ["regcred"]},
    "required value removed": {"bridgeUser": None},
}


@pytest.mark.parametrize("overrides", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_refuses_bad_values(overrides):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(merged(overrides))


GOOD_VALUES = {
    "a percentage": {"updateStrategy": {"maxUnavailable": "10%"}},
    "tolerations of one taint": {"tolerations": [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
         "effect": "NoSchedule"},
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
         "tolerationSeconds": 60}]},
    "no tolerations": {"tolerations": []},
    "a large uid": {"bridgeUser": {"uid": 4294967294, "gid": 4294967294}},
    "resync off": {"resync": 0},
    "numeric quantities and more resources": {"resources": {
        "requests": {"cpu": 0.01, "memory": "16Mi", "ephemeral-storage": "1Mi"},
        "limits": {"cpu": "1", "memory": "1e8"}}},
    "no resources": {"resources": None},
    "Service and ServiceMonitor": {"metrics": {"service": {"enabled": True},
                                               "serviceMonitor": {"enabled": True}}},
    "an affinity": {"affinity": {"nodeAffinity": {}}},
}


@pytest.mark.parametrize("overrides", GOOD_VALUES.values(), ids=GOOD_VALUES.keys())
def test_schema_accepts_good_values(overrides):
    jsonschema.Draft7Validator(SCHEMA).validate(merged(overrides))
    render(overrides)


# --- which values the templates read --------------------------------------------------------------

def value_references():
    """{("a", "b"): [file, ...]} for every .Values.a.b the templates read, resolved through
    `with` (the dot inside `with .Values.x` is x). Named templates see the root."""
    refs = {}

    def pipeline_refs(commands, dot_path, where):
        paths = []
        for command in commands:
            for kind, value in command:
                if kind != "field":
                    continue
                if value == ".":
                    path = dot_path
                    if path is None:
                        continue
                else:
                    if dot_path is None:
                        parts = tuple(value[1:].split("."))
                        assert parts[0] in ("Values", "Release", "Chart"), f"{where}: {value}"
                        if parts[0] != "Values":
                            assert len(parts) == 2 and parts[1] in (
                                "Name", "Namespace", "Service", "Version", "AppVersion"), \
                                f"{where}: {value}"
                            continue
                        path = parts[1:]
                    else:
                        path = dot_path + tuple(value[1:].split("."))
                refs.setdefault(path, set()).add(where)
                paths.append(path)
        return paths

    def walk(nodes, dot_path, where):
        for node in nodes:
            if node[0] == "out":
                pipeline_refs(node[1], dot_path, where)
            elif node[0] == "if":
                for pipeline, body in node[1]:
                    pipeline_refs(pipeline, dot_path, where)
                    walk(body, dot_path, where)
                if node[2] is not None:
                    walk(node[2], dot_path, where)
            elif node[0] == "with":
                pipeline = node[1][0][0]
                paths = pipeline_refs(pipeline, dot_path, where)
                assert len(pipeline) == 1 and len(paths) == 1, \
                    f"{where}: `with` on one value only"
                walk(node[1][0][1], paths[0], where)
                if node[2] is not None:
                    walk(node[2], dot_path, where)

    for name, tree in CHART_TEMPLATES.templates.items():
        walk(tree, None, name)
    for name, body in CHART_TEMPLATES.defines.items():
        walk(body, None, f"define {name}")
    return refs


def schema_has(path):
    schema = SCHEMA
    for part in path:
        props = schema.get("properties", {})
        if part not in props:
            return False
        schema = props[part]
    return True


def values_have(path):
    current = VALUES
    for part in path:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    return True


def test_every_value_the_templates_read_is_in_values_and_schema():
    refs = value_references()
    assert ("metrics", "port") in refs and ("bridgeUser", "uid") in refs, "the scan works"
    missing_values = {".".join(p): sorted(w) for p, w in refs.items() if not values_have(p)}
    missing_schema = {".".join(p): sorted(w) for p, w in refs.items() if not schema_has(p)}
    assert not missing_values, f"not in values.yaml: {missing_values}"
    assert not missing_schema, f"not in values.schema.json: {missing_schema}"


def test_every_value_is_read_by_a_template():
    refs = set(value_references())

    def leaves(v, path=()):
        if isinstance(v, dict) and v:
            for k, x in v.items():
                yield from leaves(x, path + (k,))
        else:
            yield path

    unused = [".".join(p) for p in leaves(VALUES)
              if not any(p[:len(r)] == r for r in refs)]
    assert not unused, f"values no template reads: {unused}"


def test_schema_describes_exactly_the_values():
    """values.yaml's keys are the schema's properties, level by level (free maps aside)."""
    def walk(values, schema, path):
        props = schema.get("properties")
        if props is None or not isinstance(values, dict):
            return
        assert set(values) == set(props), f"{path or 'the root'}: values {sorted(values)}, " \
                                          f"schema {sorted(props)}"
        for k in values:
            walk(values[k], props[k], f"{path}.{k}" if path else k)
    walk(VALUES, SCHEMA, "")


# --- the rendered objects -------------------------------------------------------------------------

def test_default_render_has_exactly_the_namespaced_objects():
    objects = render()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["DaemonSet", "Role", "RoleBinding", "ServiceAccount"]
    for o in objects:
        assert o["metadata"]["namespace"] == RELEASE["Namespace"], o["kind"]
        assert o["metadata"]["name"] == "multinic-bridge", o["kind"]
        assert o["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE["Name"]


def test_object_names_follow_the_release():
    objects = render(release=dict(RELEASE, Name="mnb"))
    assert {o["metadata"]["name"] for o in objects} == {"mnb-multinic-bridge"}
    objects = render({"fullnameOverride": "bridge"})
    assert {o["metadata"]["name"] for o in objects} == {"bridge"}


def test_daemonset_runs_unprivileged_as_the_bridge_user():
    ds = one(render(), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = bridge_container([ds])
    sc = effective_security(pod, c)
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == VALUES["bridgeUser"]["uid"]
    assert sc["runAsGroup"] == VALUES["bridgeUser"]["gid"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert pod.get(host, False) is False, host
    assert "ports" in c and all("hostPort" not in p for p in c["ports"])
    # the only volume from the host is the socket
    host_paths = [v for v in pod["volumes"] if "hostPath" in v]
    assert len(host_paths) == len(pod["volumes"]) == 1


def test_uid_and_gid_follow_values_even_large_ones():
    ds = one(render({"bridgeUser": {"uid": 4294967294, "gid": 1000000}}), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    for context in (pod["securityContext"], bridge_container([ds])["securityContext"]):
        # an int, not the float that "4.294967294e+09" would parse to
        assert type(context["runAsUser"]) is int and context["runAsUser"] == 4294967294
        assert type(context["runAsGroup"]) is int and context["runAsGroup"] == 1000000


@pytest.mark.parametrize("path", ["/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket"])
def test_host_system_bus_socket_is_mounted_at_the_same_path(path):
    ds = one(render({"dbus": {"socketPath": path}}), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = bridge_container([ds])
    (volume,) = pod["volumes"]
    assert volume["hostPath"] == {"path": path, "type": "Socket"}
    (mount,) = c["volumeMounts"]
    assert mount["name"] == volume["name"] and mount["mountPath"] == path
    env = {e["name"]: e for e in c["env"]}
    assert env["DBUS_SYSTEM_BUS_ADDRESS"]["value"] == f"unix:path={path}"


def test_node_name_comes_from_the_downward_api():
    c = bridge_container(render())
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"] == {"name": "NODE_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    assert set(env) == {"NODE_NAME", "DBUS_SYSTEM_BUS_ADDRESS"}


@pytest.mark.parametrize("port", [9464, 10250, 65535])
def test_probes_and_port_are_the_metrics_port(port):
    c = bridge_container(render({"metrics": {"port": port}}))
    ports = {p["name"]: p for p in c["ports"]}
    assert ports["metrics"]["containerPort"] == port
    assert ports["metrics"]["protocol"] == "TCP"

    def probe_port(probe):
        p = probe["httpGet"]["port"]
        return ports[p]["containerPort"] if isinstance(p, str) else p
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probe_port(c["livenessProbe"]) == port
    assert probe_port(c["readinessProbe"]) == port
    assert f"--port={port}" in c["args"]


def test_args_carry_port_resync_and_watch_timeout():
    c = bridge_container(render())
    assert c["args"] == ["--port=9464", "--resync=300", "--watch-timeout=300"]
    assert "command" not in c, "the image's entrypoint runs"
    c = bridge_container(render({"resync": 86400, "watchTimeout": 60, "debug": True,
                                 "metrics": {"port": 9100}}))
    assert c["args"] == ["--port=9100", "--resync=86400", "--watch-timeout=60", "--debug"]
    c = bridge_container(render({"resync": 0}))
    assert "--resync=0" in c["args"]


def test_image_defaults_to_the_app_version():
    c = bridge_container(render())
    assert c["image"] == f"multinic-bridge:{CHART_META['appVersion']}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    c = bridge_container(render({"image": {"repository": "registry.example:5000/mn/bridge",
                                           "tag": "0.1.0-1", "pullPolicy": "Always"}}))
    assert c["image"] == "registry.example:5000/mn/bridge:0.1.0-1"
    assert c["imagePullPolicy"] == "Always"


def test_scheduling_and_resources():
    ds = one(render(), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    assert bridge_container([ds])["resources"] == VALUES["resources"]
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1}}
    for absent in ("nodeSelector", "affinity", "imagePullSecrets"):
        assert absent not in pod, absent
    assert "annotations" not in ds["spec"]["template"]["metadata"]
    assert pod["serviceAccountName"] == "multinic-bridge"


def test_optional_pod_settings_appear_when_set():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "multinic.io/managed", "operator": "In", "values": ["true"]}]}]}}}
    ds = one(render({
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": affinity,
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                         "tolerationSeconds": 60}],
        "imagePullSecrets": [{"name": "regcred"}],
        "podAnnotations": {"a.example/b": "c"},
        "podLabels": {"team": "net"},
        "priorityClassName": "",
        "updateStrategy": {"maxUnavailable": "10%"},
        "resources": {"limits": {"memory": "128Mi"}},
    }), "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    meta = ds["spec"]["template"]["metadata"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["affinity"] == affinity
    assert pod["tolerations"] == [{"key": "k", "operator": "Equal", "value": "v",
                                   "effect": "NoExecute", "tolerationSeconds": 60}]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert meta["annotations"] == {"a.example/b": "c"}
    assert meta["labels"]["team"] == "net"
    assert "priorityClassName" not in pod
    assert ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "10%"
    assert bridge_container([ds])["resources"] == {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "100m", "memory": "128Mi"}}, "maps merge with the defaults, as in helm"
    ds = one(render({"tolerations": [], "resources": None}), "DaemonSet")
    assert "tolerations" not in ds["spec"]["template"]["spec"]
    assert "resources" not in bridge_container([ds])


def test_selector_matches_the_pods():
    ds = one(render({"podLabels": {"team": "net"}}), "DaemonSet")
    selector = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert "team" not in selector, "extra pod labels stay out of the immutable selector"
    assert "app.kubernetes.io/version" not in selector


def test_rbac_is_namespaced_and_exactly_what_the_bridge_needs():
    objects = render()
    role = one(objects, "Role")
    assert role["rules"] == EXPECTED_RULES
    assert role["metadata"]["namespace"] == RELEASE["Namespace"]
    binding = one(objects, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    sa = one(objects, "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": RELEASE["Namespace"]}]
    assert one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == \
        sa["metadata"]["name"]
    for o in objects:
        assert o["kind"] in NAMESPACED_KINDS, f"{o['kind']} is cluster-wide or unexpected"


def test_an_existing_service_account_can_be_used():
    objects = render({"serviceAccount": {"create": False, "name": "mine"}})
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]
    assert one(objects, "RoleBinding")["subjects"][0]["name"] == "mine"
    assert one(objects, "DaemonSet")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    objects = render({"rbac": {"create": False}})
    assert sorted(o["kind"] for o in objects) == ["DaemonSet", "ServiceAccount"]


def test_service_and_service_monitor_only_when_enabled():
    objects = render({"metrics": {"service": {"enabled": True}}})
    svc = one(objects, "Service")
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"]
    objects = render({"metrics": {"port": 9500, "service": {"enabled": True},
                                  "serviceMonitor": {"enabled": True,
                                                     "labels": {"release": "prom"}}}})
    svc, sm = one(objects, "Service"), one(objects, "ServiceMonitor")
    ds = one(objects, "DaemonSet")
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 9500, "targetPort": "metrics",
                                     "protocol": "TCP"}]
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [RELEASE["Namespace"]]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics",
                                        "interval": "30s", "scrapeTimeout": "10s"}]


def test_notes_render():
    text = CHART_TEMPLATES.render_file("NOTES.txt", VALUES)
    assert "multinic-system" in text and f"uid {VALUES['bridgeUser']['uid']}" in text
    assert "pod-security.kubernetes.io/enforce=privileged" in text


# --- the CRD --------------------------------------------------------------------------------------

def test_chart_crd_is_the_top_level_crd():
    chart_crd = CHART / "crds" / "multinicnodeconfigs.yaml"
    assert not chart_crd.is_symlink(), "a copy: symlinks do not survive `helm package`"
    assert chart_crd.read_bytes() == (REPO / "crds" / "multinicnodeconfigs.yaml").read_bytes(), \
        "refresh: cp crds/multinicnodeconfigs.yaml charts/multinic-bridge/crds/"
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == ["multinicnodeconfigs.yaml"]


def test_rbac_resources_are_the_crd_ones():
    crd = load_yaml(REPO / "crds" / "multinicnodeconfigs.yaml")
    assert crd["spec"]["group"] == EXPECTED_RULES[0]["apiGroups"][0]
    assert crd["spec"]["names"]["plural"] == EXPECTED_RULES[0]["resources"][0]
    assert crd["spec"]["scope"] == "Namespaced"
    assert all(v["subresources"].get("status") == {} for v in crd["spec"]["versions"])


# --- the Containerfile ----------------------------------------------------------------------------

def containerfile_stages():
    """[{"from": ..., "name": ..., "instructions": [(KEYWORD, args)], "args": {name: default}}]"""
    text = CONTAINERFILE.read_text()
    lines, current = [], ""
    for raw in text.splitlines():
        if not current and (raw.lstrip().startswith("#") or not raw.strip()):
            continue
        if current and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    assert not current, "a continued line at the end"
    stages = []
    for line in lines:
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"^(\S+)(?:\s+AS\s+(\S+))?$", args.strip(), re.I)
            assert m, line
            stages.append({"from": m.group(1), "name": m.group(2), "instructions": [],
                           "args": {}})
            continue
        assert stages, f"{keyword} before FROM"
        stages[-1]["instructions"].append((keyword, args.strip()))
        if keyword == "ARG":
            name, _, default = args.strip().partition("=")
            stages[-1]["args"][name] = default
    return text, stages


def substitute(text, args):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)),
                  text)


def apt_installed(stage):
    pkgs = []
    for keyword, args in stage["instructions"]:
        if keyword != "RUN":
            continue
        for m in re.finditer(r"apt-get install((?:\s+(?!&&)\S+)+)", args):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def test_containerfile_header_documents_the_build():
    text, _ = containerfile_stages()
    header = text.split("\nFROM", 1)[0]
    assert "podman build -f bridge/Containerfile -t multinic-bridge:0.1.0 ." in header
    assert "NOT BUILT" in header and "no container engine" in header


def test_containerfile_builds_in_debian_and_runs_on_slim():
    _, stages = containerfile_stages()
    assert len(stages) == 2
    build, runtime = stages
    assert build["from"] == "debian:12" and build["name"]
    assert runtime["from"] == "debian:12-slim"
    build_pkgs = set(apt_installed(build))
    assert {"meson", "ninja-build", "gcc", "libc6-dev", "pkg-config", "libsystemd-dev",
            "libcurl4-openssl-dev", "libmicrohttpd-dev", "libcjson-dev", "libyaml-dev",
            "libnl-3-dev", "libnl-route-3-dev", "uuid-dev"} <= build_pkgs
    runs = " ".join(a for k, a in build["instructions"] if k == "RUN")
    assert "meson setup" in runs and "ninja -C" in runs and "multinic-bridge" in runs
    copies = [a for k, a in runtime["instructions"] if k == "COPY"]
    assert copies == [f"--from={build['name']} /out/usr/bin/multinic-bridge "
                      "/usr/bin/multinic-bridge"]


def meson_dependencies():
    """The pkg-config names of the required dependency() calls in the project's meson.build
    files (threads is the compiler's, not a package's)."""
    names = set()
    for path in REPO.rglob("meson.build"):
        rel = path.relative_to(REPO).parts
        if rel[0].startswith(("build", "dist", ".")):
            continue
        for m in re.finditer(r"(?<![_\w])dependency\(\s*'([^']+)'([^)]*)\)", path.read_text()):
            if re.search(r"required\s*:\s*false", m.group(2)) or m.group(1) == "threads":
                continue
            names.add(m.group(1))
    return names


def test_containerfile_build_stage_has_every_dependency_of_meson():
    """`meson setup` configures the whole project, so every required dependency() needs its -dev
    package in the build stage; the package is the one holding the .pc file on this Debian 12
    host (deps_install puts them there)."""
    if not shutil.which("pkg-config") or not shutil.which("dpkg"):
        pytest.skip("pkg-config or dpkg missing")
    _, (build, _) = containerfile_stages()
    installed = set(apt_installed(build))
    names = meson_dependencies()
    assert {"libsystemd", "libcurl", "libmicrohttpd"} <= names, "the scan works"
    for name in sorted(names):
        pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", name],
                               capture_output=True, text=True).stdout.strip()
        assert pcdir, f"{name}: no .pc file on this host (scripts/lib/deps.sh installs them)"
        owner = subprocess.run(["dpkg", "-S", f"{pcdir}/{name}.pc"], capture_output=True,
                               text=True).stdout
        packages = {p.strip().split(":")[0] for p in owner.partition(": ")[0].split(",")}
        assert packages & installed, f"{name}: the build stage installs none of {packages}"


def test_containerfile_runtime_has_no_compiler_and_runs_as_the_bridge_user():
    _, (_, runtime) = containerfile_stages()
    pkgs = apt_installed(runtime)
    assert sorted(pkgs) == sorted(["libsystemd0", "libcurl4", "libmicrohttpd12", "libcjson1",
                                   "ca-certificates"])
    for p in pkgs:
        assert not p.endswith("-dev") and p not in ("gcc", "cc", "clang", "meson",
                                                     "ninja-build", "make", "build-essential",
                                                     "pkg-config"), p
    assert "--no-install-recommends" in " ".join(a for k, a in runtime["instructions"])
    users = [a for k, a in runtime["instructions"] if k == "USER"]
    assert len(users) == 1
    user = substitute(users[0], runtime["args"])
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root user (the kubelet checks it)"
    assert int(uid) == VALUES["bridgeUser"]["uid"] and int(gid) == VALUES["bridgeUser"]["gid"]
    keywords = [k for k, _ in runtime["instructions"]]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    entrypoints = [a for k, a in runtime["instructions"] if k == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["/usr/bin/multinic-bridge"]]
    assert "CMD" not in keywords, "the chart passes the arguments"
    useradd = " ".join(a for k, a in runtime["instructions"] if k == "RUN")
    assert re.search(r"useradd .*--uid \"?\$BRIDGE_UID", useradd)


def test_containerfile_runtime_libraries_cover_the_binary():
    """The runtime stage installs the Debian package of every library the built bridge links
    (checked on this Debian host, the same release as the image; libc6 comes with the base)."""
    binary = REPO / "build" / "bridge" / "multinic-bridge"
    if not binary.exists():
        pytest.skip(f"{binary} is not built (ninja -C build)")
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.skip("readelf or dpkg missing")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", str(binary)], capture_output=True,
                                       text=True, check=True).stdout)
    assert needed
    _, (_, runtime) = containerfile_stages()
    pkgs = set(apt_installed(runtime)) | {"libc6"}
    for soname in needed:
        owners = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True,
                                text=True).stdout
        owner_pkgs = set()
        for line in owners.splitlines():      # "libc6:amd64, libc6-x: /lib/x86_64.../libc.so.6"
            packages, _, path = line.partition(": ")
            if path.rsplit("/", 1)[-1] == soname:
                owner_pkgs |= {p.strip().split(":")[0] for p in packages.split(",")}
        assert owner_pkgs & pkgs, f"{soname} (from {sorted(owner_pkgs)}) is not installed"


# --- helm itself, when it is there ----------------------------------------------------------------

HELM = shutil.which("helm")
needs_helm = pytest.mark.skipif(not HELM, reason="no helm binary on the PATH; the chart was "
                                                 "rendered by this file's renderer only")
HELM_CASES = {
    "defaults": {},
    "everything on": {"metrics": {"service": {"enabled": True},
                                  "serviceMonitor": {"enabled": True,
                                                     "labels": {"release": "prom"}}},
                      "podAnnotations": {"a": "b"}, "podLabels": {"c": "d"},
                      "nodeSelector": {"kubernetes.io/os": "linux"},
                      "imagePullSecrets": [{"name": "regcred"}], "debug": True,
                      "bridgeUser": {"uid": 4294967294, "gid": 1000000},
                      "updateStrategy": {"maxUnavailable": "10%"}},
}


@needs_helm
def test_helm_lint():
    p = subprocess.run([HELM, "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@needs_helm
@pytest.mark.parametrize("overrides", HELM_CASES.values(), ids=HELM_CASES.keys())
def test_helm_template_equals_the_renderer(tmp_path, overrides):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(overrides))
    p = subprocess.run([HELM, "template", RELEASE["Name"], str(CHART), "--namespace",
                        RELEASE["Namespace"], "-f", str(values_file)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    helm_objects = [d for d in yaml.safe_load_all(p.stdout) if d is not None]

    def key(o):
        return (o["kind"], o["metadata"]["name"])
    assert sorted(helm_objects, key=key) == sorted(render(overrides), key=key)


@needs_helm
@pytest.mark.parametrize("overrides", [BAD_VALUES["port as a string"],
                                       BAD_VALUES["unknown nested key"]])
def test_helm_refuses_bad_values(tmp_path, overrides):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(overrides))
    p = subprocess.run([HELM, "template", "x", str(CHART), "-f", str(values_file)],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "schema" in p.stderr.lower(), p.stderr
