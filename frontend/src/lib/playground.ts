// The query playground's pure parts: the form's validation, the Pinecone
// data-plane body, and the "copy as" snippets. No React, no fetch: unit-tested
// on their own (playground.test.ts).

import { checkFilterText } from "./filterLanguage";

export type QueryBy = "vector" | "id";

export interface QueryForm {
  by: QueryBy;
  vector: string;
  id: string;
  topK: string;
  namespace: string;
  filter: string;
  includeValues: boolean;
  includeMetadata: boolean;
}

export const DEFAULT_FORM: QueryForm = {
  by: "vector",
  vector: "",
  id: "",
  topK: "10",
  namespace: "",
  filter: "",
  includeValues: false,
  includeMetadata: true,
};

export const MAX_TOP_K = 10000;

/** Examples of the filter language (Pinecone's operators), offered under the Filter field. */
export const FILTER_EXAMPLES: readonly { label: string; filter: string }[] = [
  { label: "genre is jazz", filter: '{"genre": {"$eq": "jazz"}}' },
  { label: "year from 2020", filter: '{"year": {"$gte": 2020}}' },
  { label: "jazz from 2020", filter: '{"$and": [{"genre": {"$eq": "jazz"}}, {"year": {"$gte": 2020}}]}' },
];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function parseJson(text: string): Parsed<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, error: `Not valid JSON: ${why}` };
  }
}

/** A JSON array of `dimension` finite numbers. */
export function parseVector(text: string, dimension: number): Parsed<number[]> {
  if (!text.trim()) return { ok: false, error: `Enter a JSON array of ${dimension} numbers, e.g. [${Array.from({ length: Math.min(dimension, 3) }, () => "0.1").join(", ")}${dimension > 3 ? ", …" : ""}].` };
  const parsed = parseJson(text);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (!Array.isArray(value)) return { ok: false, error: "Must be a JSON array of numbers, e.g. [0.1, 0.2, 0.3]." };
  const bad = value.findIndex((item) => typeof item !== "number" || !Number.isFinite(item));
  if (bad >= 0) return { ok: false, error: `Item ${bad + 1} is not a number.` };
  if (value.length !== dimension) return { ok: false, error: `Has ${value.length} numbers; this index's dimension is ${dimension}.` };
  return { ok: true, value: value as number[] };
}

/** An optional filter: empty, or a filter the server's parser accepts (lib/filterLanguage.ts). */
export function parseFilter(text: string): Parsed<JsonObject | undefined> {
  const checked = checkFilterText(text);
  if (!checked.ok) return { ok: false, error: checked.error };
  return { ok: true, value: checked.value as JsonObject | undefined };
}

export function parseTopK(text: string): Parsed<number> {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || n < 1 || n > MAX_TOP_K) return { ok: false, error: `A whole number from 1 to ${MAX_TOP_K.toLocaleString("en-US")}.` };
  return { ok: true, value: n };
}

/** The body of `POST {host}/query` (Pinecone's data plane, camelCase). */
export interface QueryBody {
  vector?: number[];
  id?: string;
  topK: number;
  namespace: string;
  filter?: JsonObject;
  includeValues: boolean;
  includeMetadata: boolean;
}

export type FormErrors = Partial<Record<"vector" | "id" | "topK" | "filter", string>>;

/** Validates the form; answers the body to send, or the errors per field. */
export function buildQuery(form: QueryForm, dimension: number): { body: QueryBody; errors?: undefined } | { body?: undefined; errors: FormErrors } {
  const errors: FormErrors = {};
  let vector: number[] | undefined;
  if (form.by === "vector") {
    const v = parseVector(form.vector, dimension);
    if (v.ok) vector = v.value;
    else errors.vector = v.error;
  } else if (!form.id.trim()) {
    errors.id = "Enter the ID of a stored vector.";
  }
  const topK = parseTopK(form.topK);
  if (!topK.ok) errors.topK = topK.error;
  const filter = parseFilter(form.filter);
  if (!filter.ok) errors.filter = filter.error;
  if (Object.keys(errors).length || !topK.ok || !filter.ok) return { errors };
  const body: QueryBody = {
    ...(form.by === "vector" ? { vector } : { id: form.id.trim() }),
    topK: topK.value,
    namespace: form.namespace,
    ...(filter.value ? { filter: filter.value } : {}),
    includeValues: form.includeValues,
    includeMetadata: form.includeMetadata,
  };
  return { body };
}

/** A POSIX shell single-quoted word. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** `curl` of the query, the key read from $VECTORPLANE_KEY (never the playground's key). */
export function curlSnippet(host: string, body: QueryBody): string {
  return [`curl -sS -X POST "${host}/query" \\`, `  -H "Api-Key: $VECTORPLANE_KEY" \\`, `  -H "Content-Type: application/json" \\`, `  -d ${shellQuote(JSON.stringify(body))}`].join("\n");
}

/** A JSON value as a Python literal (true/false/null -> True/False/None). */
export function pythonLiteral(value: JsonValue | undefined): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "None";
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(", ")}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${pythonLiteral(v)}`)
    .join(", ")}}`;
}

/** The same query with the pinecone Python client, pointed at this platform: the client asks
 * the control plane (`host=`) where the index lives, as the README's examples do. */
export function pythonSnippet(controlPlane: string, indexName: string, body: QueryBody): string {
  const args: string[] = [];
  if (body.vector !== undefined) args.push(`vector=${pythonLiteral(body.vector)}`);
  if (body.id !== undefined) args.push(`id=${pythonLiteral(body.id)}`);
  args.push(`top_k=${body.topK}`);
  if (body.namespace) args.push(`namespace=${pythonLiteral(body.namespace)}`);
  if (body.filter) args.push(`filter=${pythonLiteral(body.filter)}`);
  args.push(`include_values=${pythonLiteral(body.includeValues)}`);
  args.push(`include_metadata=${pythonLiteral(body.includeMetadata)}`);
  return [
    "import os",
    "",
    "from pinecone import Pinecone",
    "",
    `pc = Pinecone(api_key=os.environ["VECTORPLANE_KEY"], host=${pythonLiteral(controlPlane)})`,
    `index = pc.Index(${pythonLiteral(indexName)})`,
    `print(index.query(${args.join(", ")}))`,
  ].join("\n");
}
