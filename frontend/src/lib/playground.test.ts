import { describe, expect, it } from "vitest";
import { buildQuery, curlSnippet, DEFAULT_FORM, FILTER_EXAMPLES, parseFilter, parseTopK, parseVector, pythonLiteral, pythonSnippet, shellQuote } from "./playground";

describe("the vector field", () => {
  it("accepts a JSON array of numbers of the index's dimension", () => {
    expect(parseVector("[1, 0, 0.5]", 3)).toEqual({ ok: true, value: [1, 0, 0.5] });
  });
  it("refuses what does not parse, what is not an array of numbers, and the wrong length", () => {
    expect(parseVector("[1, 0", 3)).toMatchObject({ ok: false, error: expect.stringMatching(/^Not valid JSON/) as unknown });
    expect(parseVector('{"a": 1}', 3)).toMatchObject({ ok: false, error: expect.stringMatching(/array/) as unknown });
    expect(parseVector('[1, "2", 3]', 3)).toEqual({ ok: false, error: "Item 2 is not a number." });
    expect(parseVector("[1, 2]", 3)).toEqual({ ok: false, error: "Has 2 numbers; this index's dimension is 3." });
    expect(parseVector("  ", 3)).toMatchObject({ ok: false });
  });
});

describe("the filter editor", () => {
  it("takes an empty filter as none", () => {
    expect(parseFilter("")).toEqual({ ok: true, value: undefined });
    expect(parseFilter("  \n")).toEqual({ ok: true, value: undefined });
  });
  it("refuses invalid JSON", () => {
    const answer = parseFilter('{"genre": ');
    expect(answer.ok).toBe(false);
    expect(answer.ok ? "" : answer.error).toMatch(/^Not valid JSON/);
  });
  it("refuses JSON that is not an object", () => {
    const kinds: Record<string, string> = { "[1, 2]": "list", '"jazz"': "string", "3": "number", null: "null", true: "boolean" };
    for (const [text, kind] of Object.entries(kinds)) {
      expect(parseFilter(text)).toEqual({ ok: false, error: `a filter must be a JSON object, got ${kind} (at the filter)` });
    }
  });
  it("refuses what the server's parser refuses, with its message", () => {
    expect(parseFilter('{"genre": {"$like": "j%"}}')).toEqual({ ok: false, error: "unknown operator '$like' (at filter['genre']['$like'])" });
  });
  it("accepts an object, and every example", () => {
    expect(parseFilter('{"genre": {"$eq": "jazz"}}')).toEqual({ ok: true, value: { genre: { $eq: "jazz" } } });
    expect(FILTER_EXAMPLES).toHaveLength(3);
    for (const example of FILTER_EXAMPLES) expect(parseFilter(example.filter).ok).toBe(true);
  });
});

describe("top k", () => {
  it("is a whole number from 1 to 10,000", () => {
    expect(parseTopK("10")).toEqual({ ok: true, value: 10 });
    expect(parseTopK("10000")).toEqual({ ok: true, value: 10000 });
    for (const bad of ["0", "10001", "2.5", "-1", "", "ten"]) expect(parseTopK(bad).ok).toBe(false);
  });
});

describe("the query body", () => {
  it("is Pinecone's camelCase body for a vector query", () => {
    const built = buildQuery({ ...DEFAULT_FORM, vector: "[1,0,0]", topK: "2", filter: '{"genre": {"$eq": "jazz"}}' }, 3);
    expect(built.body).toEqual({ vector: [1, 0, 0], topK: 2, namespace: "", filter: { genre: { $eq: "jazz" } }, includeValues: false, includeMetadata: true });
    expect(JSON.stringify(built.body)).toBe('{"vector":[1,0,0],"topK":2,"namespace":"","filter":{"genre":{"$eq":"jazz"}},"includeValues":false,"includeMetadata":true}');
  });
  it("is {id} when querying by ID, without a filter when it is empty", () => {
    const built = buildQuery({ ...DEFAULT_FORM, by: "id", id: " a ", vector: "not json", namespace: "ns", includeValues: true }, 3);
    expect(built.body).toEqual({ id: "a", topK: 10, namespace: "ns", includeValues: true, includeMetadata: true });
  });
  it("answers every field's error and no body", () => {
    const built = buildQuery({ ...DEFAULT_FORM, vector: "[1]", topK: "0", filter: "[]" }, 3);
    expect(built.body).toBeUndefined();
    expect(Object.keys(built.errors ?? {}).sort()).toEqual(["filter", "topK", "vector"]);
    expect(buildQuery({ ...DEFAULT_FORM, by: "id" }, 3).errors).toHaveProperty("id");
  });
});

describe("the snippets", () => {
  const host = "http://127.0.0.1:8080/v1/indexes/docs";
  const body = { vector: [1, 0, 0], topK: 2, namespace: "", filter: { genre: { $eq: "it's" }, ok: { $exists: true } }, includeValues: false, includeMetadata: true };

  it("curl: POST {host}/query with the key from $VECTORPLANE_KEY and the body single-quoted", () => {
    const text = curlSnippet(host, body);
    expect(text).toContain('curl -sS -X POST "http://127.0.0.1:8080/v1/indexes/docs/query"');
    expect(text).toContain('-H "Api-Key: $VECTORPLANE_KEY"');
    expect(text).toContain('-H "Content-Type: application/json"');
    expect(text).toContain(`-d '{"vector":[1,0,0],"topK":2,"namespace":"","filter":{"genre":{"$eq":"it'\\''s"},"ok":{"$exists":true}},"includeValues":false,"includeMetadata":true}'`);
  });

  it("quotes for a POSIX shell", () => {
    expect(shellQuote("a'b")).toBe("'a'\\''b'");
  });

  it("Python: the pinecone client pointed at the control plane and the index host, with Python literals", () => {
    const text = pythonSnippet("http://127.0.0.1:8000", "docs", body);
    expect(text).toContain("from pinecone import Pinecone");
    expect(text).toContain('pc = Pinecone(api_key=os.environ["VECTORPLANE_KEY"], host="http://127.0.0.1:8000")');
    expect(text).toContain('index = pc.Index("docs")');
    expect(text).toContain('index.query(vector=[1, 0, 0], top_k=2, filter={"genre": {"$eq": "it\'s"}, "ok": {"$exists": True}}, include_values=False, include_metadata=True)');
    expect(text.startsWith("import os\n")).toBe(true);
  });

  it("Python: by ID, with a namespace", () => {
    const text = pythonSnippet("http://cp", "docs", { id: "a", topK: 5, namespace: "ns", includeValues: true, includeMetadata: false });
    expect(text).toContain('index.query(id="a", top_k=5, namespace="ns", include_values=True, include_metadata=False)');
  });

  it("never holds a key, only the environment variable", () => {
    for (const text of [curlSnippet(host, body), pythonSnippet("http://cp", "docs", body)]) {
      expect(text).not.toMatch(/vpk_/);
      expect(text).toContain("VECTORPLANE_KEY");
    }
  });

  it("Python literals", () => {
    expect(pythonLiteral(null)).toBe("None");
    expect(pythonLiteral([true, false, 1.5, "x\"y"])).toBe('[True, False, 1.5, "x\\"y"]');
  });
});
