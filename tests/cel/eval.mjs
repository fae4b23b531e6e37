// Evaluates x-kubernetes-validations rules with a real CEL implementation (@bufbuild/cel: a CEL
// parser and interpreter run against the cel-spec conformance tests, with an RE2 engine for
// matches(), so '$' is the end of the text as in the API server), for
// tests/integration/test_crd.py.
//
// stdin:  {"rules": [{"rule": "...", "message": "..."}], "cases": [{"self": ..., "oldSelf": ...}]}
// stdout: {"compile": [{"message", "error"}],            a rule that does not compile
//          "cases": [{"failed": [message, ...],          rules that evaluated to false
//                     "errors": [{"message", "error"}]}]} rules whose evaluation failed
// or, to save starting Node.js once per rule set, a list of such inputs on stdin and the list of
// their outputs on stdout.
//
// A rule that does not parse, or that calls a function the environment lacks (checked on the
// whole expression, not only on the branches a case reaches), is reported under "compile" and
// evaluated for no case. The Kubernetes API server refuses an object when a rule evaluates to
// false or fails; the two are kept apart so that a test can tell a refusal from a broken rule.
// Like the API server, a rule that reads oldSelf is evaluated only for a case with oldSelf
// (an update), and never on a create.
//
// JSON numbers without a fraction become CEL ints (BigInt), as the API server reads the
// integer fields of a structural schema; objects become CEL maps, so has() tests presence.
import { readFileSync } from "node:fs";
import {
  CelScalar,
  celEnv,
  celError,
  celFunc,
  celMethod,
  isCelError,
  parse,
  plan,
} from "@bufbuild/cel";

// Kubernetes compiles CRD rules with cel-go: its standard library plus extension libraries, among
// them cel-go's ext.Strings (https://kubernetes.io/docs/reference/using-api/cel/). Registered
// here: only what the CRD's rules use beyond @bufbuild/cel's standard library, written after
// cel-go's documented semantics; a rule that calls another extension function fails to compile
// until it is added here.
const { STRING, INT } = CelScalar;

// Kubernetes extension (cel-go ext.Strings): <string>.lowerAscii() -> string. "Returns a new
// string where all ASCII characters are lower-cased"; other characters are left as they are.
const lowerAscii = celMethod("lowerAscii", STRING, [], STRING, function () {
  return this.replace(/[A-Z]+/g, (m) => m.toLowerCase());
});

// Kubernetes extension (cel-go ext.Strings): <string>.substring(<int>[, <int>]) -> string.
// Offsets count characters (code points), start inclusive, end exclusive; an error when either
// is negative or beyond the length, or when end < start.
function codePointSlice(s, start, end) {
  const chars = [...s];
  const [i, j] = [Number(start), end === undefined ? chars.length : Number(end)];
  if (i < 0 || i > chars.length || j < 0 || j > chars.length) {
    throw celError(`index out of range: ${i < 0 || i > chars.length ? i : j}`);
  }
  if (j < i) throw celError(`invalid substring range. start: ${i}, end: ${j}`);
  return chars.slice(i, j).join("");
}
const substring1 = celMethod("substring", STRING, [INT], STRING, function (i) {
  return codePointSlice(this, i);
});
const substring2 = celMethod("substring", STRING, [INT, INT], STRING, function (i, j) {
  return codePointSlice(this, i, j);
});

// Standard, but @bufbuild/cel's int(string) takes what JavaScript's BigInt() takes ("", " 1",
// "0x1f" among them). cel-go's is strconv.ParseInt(s, 10, 64): an optional sign and decimal
// digits, within int64; anything else is an error.
const intOfString = celFunc("int", [STRING], INT, (s) => {
  const n = /^[+-]?[0-9]+$/.test(s) ? BigInt(s) : undefined;
  if (n === undefined || n < -(2n ** 63n) || n >= 2n ** 63n) {
    throw celError(`cannot convert ${JSON.stringify(s)} to int`);
  }
  return n;
});

const env = celEnv({ funcs: [lowerAscii, substring1, substring2, intOfString] });

// Operators that @bufbuild/cel's planner implements itself rather than through the function
// resolver (its planner.js, planCall). Optional field and index access (_?._, _[?_]) are left
// out: Kubernetes has them only with its optional-types library; add them when a rule uses them.
const BUILTIN_CALLS = new Set(["_&&_", "_||_", "_?_:_", "_[_]", "@not_strictly_false"]);

function calledFunctions(node, out = new Set()) {
  if (node && typeof node === "object") {
    if (node.$typeName === "cel.expr.Expr.Call") out.add(node.function);
    for (const v of Object.values(node)) {
      if (v && typeof v === "object") calledFunctions(v, out);
    }
  }
  return out;
}

function compile(rule) {
  const parsed = parse(rule); // throws on a syntax error
  const unknown = [...calledFunctions(parsed.expr)].filter(
    (f) => !BUILTIN_CALLS.has(f) && !env.funcs.find(f),
  );
  if (unknown.length) {
    throw new Error(`undeclared function(s) ${unknown.join(", ")}`);
  }
  return plan(env, parsed);
}

function toCel(v) {
  if (Array.isArray(v)) return v.map(toCel);
  if (v !== null && typeof v === "object") {
    return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  }
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
}

function errorText(e) {
  return String(e?.message ?? e);
}

function evaluate(input) {
  const out = { compile: [], cases: [] };
  const programs = [];
  for (const { rule, message } of input.rules) {
    try {
      programs.push({ message, run: compile(rule), oldSelf: /\boldSelf\b/.test(rule) });
    } catch (e) {
      out.compile.push({ message, error: errorText(e) });
    }
  }
  for (const c of input.cases) {
    const result = { failed: [], errors: [] };
    const bindings = { self: toCel(c.self) };
    if ("oldSelf" in c) bindings.oldSelf = toCel(c.oldSelf);
    for (const p of programs) {
      if (p.oldSelf && !("oldSelf" in c)) continue;
      let value;
      try {
        value = p.run(bindings);
      } catch (e) {
        value = e;
      }
      if (value === true) continue;
      if (value === false) result.failed.push(p.message);
      else if (isCelError(value) || value instanceof Error) {
        result.errors.push({ message: p.message, error: errorText(value) });
      } else {
        result.errors.push({ message: p.message, error: `not a bool: ${String(value)}` });
      }
    }
    out.cases.push(result);
  }
  return out;
}

const input = JSON.parse(readFileSync(0, "utf8"));
const output = Array.isArray(input) ? input.map(evaluate) : evaluate(input);
process.stdout.write(JSON.stringify(output) + "\n");
