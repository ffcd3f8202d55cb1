// The metadata filter language (Pinecone's operators) checked in the browser, so that a
// filter editor can say what is wrong, and where, while the user types. The server's
// parser (vectorplane/contract/filters.py) stays the authority: the same cases
// (filterCases.json) run through both, in Vitest and in pytest
// (tests/test_filter_cases.py), so the two cannot drift apart unnoticed.

export const MAX_DEPTH = 10;
export const MAX_CONDITIONS = 1000;
export const MAX_IN_VALUES = 10000;
export const MAX_FIELD_BYTES = 512;
export const MAX_LITERAL_BYTES = 40 * 1024;

const LOGICAL = new Set(["$and", "$or"]);
const RANGE = new Set(["$gt", "$gte", "$lt", "$lte"]);
const FIELD_OPS = new Set(["$eq", "$ne", "$in", "$nin", "$exists", ...RANGE]);
const MAX_INT = 2n ** 63n - 1n;
const MIN_INT = -(2n ** 63n);

export type FilterCheck = { ok: true; value: Record<string, unknown> | undefined; conditions: number } | { ok: false; error: string; path: (string | number)[] };

type Path = (string | number)[];

class FilterProblem extends Error {
  constructor(
    message: string,
    readonly path: Path,
  ) {
    super(message);
  }
}

const bytes = (text: string) => new TextEncoder().encode(text).length;

/** A string as Python's repr shows it (simple cases), so messages read as the server's. */
function show(text: string, limit = 60): string {
  const quoted = text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  return quoted.length <= limit ? quoted : `${quoted.slice(0, limit - 3)}...`;
}

function where(path: Path): string {
  if (!path.length) return "the filter";
  return "filter" + path.map((part) => (typeof part === "number" ? `[${part}]` : `[${show(part)}]`)).join("");
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "list";
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return "number";
  if (typeof value === "string") return "string";
  return "object";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function fail(problem: string, path: Path): never {
  throw new FilterProblem(`${problem} (at ${where(path)})`, path);
}

function checkText(value: string, what: string, path: Path): void {
  if (value.includes("\u0000")) fail(`${what} must not contain the NUL character`, path);
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)) fail(`${what} is not valid Unicode (lone surrogate)`, path);
}

function literal(value: unknown, path: Path): void {
  if (typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail("numbers must be finite (NaN and Infinity are not allowed)", path);
    if (Number.isInteger(value) && Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      const big = BigInt(value);
      if (big > MAX_INT || big < MIN_INT) fail("integer literal out of range (must fit in 64 bits)", path);
    }
    return;
  }
  if (typeof value === "string") {
    checkText(value, "string literal", path);
    if (bytes(value) > MAX_LITERAL_BYTES) fail(`string literal longer than ${MAX_LITERAL_BYTES} bytes`, path);
    return;
  }
  if (Array.isArray(value)) fail("lists are not valid literals (use $in for several values)", path);
  if (isObject(value)) fail("nested objects are not valid literals", path);
  fail(`literal must be a string, number or boolean, got ${typeName(value)}`, path);
}

class Checker {
  conditions = 0;

  count(path: Path): void {
    this.conditions += 1;
    if (this.conditions > MAX_CONDITIONS) fail(`too many conditions (more than ${MAX_CONDITIONS})`, path);
  }

  filter(value: unknown, path: Path, depth: number): void {
    if (!isObject(value)) fail(`a filter must be a JSON object, got ${typeName(value)}`, path);
    if (depth > MAX_DEPTH) fail(`filter nested too deeply (max depth ${MAX_DEPTH})`, path);
    for (const [key, operand] of Object.entries(value)) {
      const here = [...path, key];
      if (LOGICAL.has(key)) this.logical(key, operand, here, depth);
      else if (key.startsWith("$")) {
        if (FIELD_OPS.has(key)) fail(`operator ${key} must be applied to a field`, here);
        fail(`unknown operator ${show(key)}`, here);
      } else {
        this.fieldName(key, here);
        this.field(operand, here);
      }
    }
  }

  logical(key: string, operand: unknown, path: Path, depth: number): void {
    if (!Array.isArray(operand)) fail(`${key} takes a non-empty list of filters, got ${typeName(operand)}`, path);
    if (!operand.length) fail(`${key} takes a non-empty list of filters, got an empty list`, path);
    operand.forEach((child, index) => {
      if (isObject(child) && Object.keys(child).length === 0) fail(`a filter inside ${key} must not be empty`, [...path, index]);
      this.filter(child, [...path, index], depth + 1);
    });
  }

  fieldName(name: string, path: Path): void {
    if (!name) fail("field names must not be empty", path);
    checkText(name, "field name", path);
    if (bytes(name) > MAX_FIELD_BYTES) fail(`field name longer than ${MAX_FIELD_BYTES} bytes`, path);
  }

  field(operand: unknown, path: Path): void {
    if (!isObject(operand)) {
      this.count(path);
      literal(operand, path);
      return;
    }
    const entries = Object.entries(operand);
    if (!entries.length) fail("an operator object must not be empty", path);
    for (const [op, arg] of entries) {
      const here = [...path, op];
      if (!op.startsWith("$")) fail("nested objects are not valid literals (an object value must hold operators such as $eq)", path);
      if (!FIELD_OPS.has(op)) {
        if (LOGICAL.has(op)) fail(`${op} is not valid inside a field's operators`, here);
        fail(`unknown operator ${show(op)}`, here);
      }
      this.count(here);
      if (op === "$eq" || op === "$ne") literal(arg, here);
      else if (op === "$in" || op === "$nin") this.values(op, arg, here);
      else if (op === "$exists") {
        if (typeof arg !== "boolean") fail(`$exists takes a boolean, got ${typeName(arg)}`, here);
      } else {
        if (typeof arg !== "number") fail(`${op} takes a number, got ${typeName(arg)}`, here);
        literal(arg, here);
      }
    }
  }

  values(op: string, arg: unknown, path: Path): void {
    if (!Array.isArray(arg)) fail(`${op} takes a non-empty list, got ${typeName(arg)}`, path);
    if (!arg.length) fail(`${op} takes a non-empty list, got an empty list`, path);
    if (arg.length > MAX_IN_VALUES) fail(`${op} takes at most ${MAX_IN_VALUES} values, got ${arg.length}`, path);
    arg.forEach((item, index) => literal(item, [...path, index]));
  }
}

/** Checks an already-parsed filter; `{}` (and nothing) is the empty filter. */
export function checkFilter(value: unknown): FilterCheck {
  if (isObject(value) && Object.keys(value).length === 0) return { ok: true, value: undefined, conditions: 0 };
  const checker = new Checker();
  try {
    checker.filter(value, [], 1);
  } catch (cause) {
    if (cause instanceof FilterProblem) return { ok: false, error: cause.message, path: cause.path };
    throw cause;
  }
  return { ok: true, value: value as Record<string, unknown>, conditions: checker.conditions };
}

/** Parses and checks the text of a filter editor: empty text is no filter. */
export function checkFilterText(text: string): FilterCheck {
  if (!text.trim()) return { ok: true, value: undefined, conditions: 0 };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, error: `Not valid JSON: ${why}`, path: [] };
  }
  return checkFilter(value);
}
