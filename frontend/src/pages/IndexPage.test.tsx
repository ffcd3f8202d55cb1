import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { apiError, json, mockApi, signedIn, type Handler } from "../test/mockApi";
import { renderApp } from "../test/renderApp";

// uPlot draws on a canvas that jsdom lacks; the chart itself is exercised in the browser tests.
vi.mock("../components/TimeChart", () => ({
  default: ({ title }: { title: string }) => <figure aria-label={title} />,
}));

const HOST = "http://127.0.0.1:8080/v1/indexes/docs";
const INDEX = {
  id: "0b9d4c1e-1111-4a5b-9c1b-1f2a3b4c5d6e",
  name: "docs",
  dimension: 3,
  metric: "cosine",
  engine: "pgvector",
  tier: "shared",
  vector_type: "vector",
  hnsw_m: 16,
  hnsw_ef_construction: 64,
  ef_search: 40,
  text_field: false,
  deletion_protection: false,
  tags: {},
  cloud: "aws",
  region: "us-east-1",
  status: "ready",
  cluster: null,
  host: HOST,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
};
const KEY = { key_id: "7a1c7f9e-5a43-4f0e-9c1b-1f2a3b4c5d6e", index: "docs", host: HOST };
let minted = 0;
const mintKey = () => {
  minted += 1;
  return json({ ...KEY, key: `vpk_playground_${minted}`, expires_at: new Date(Date.now() + 600_000).toISOString() }, 201);
};
const MATCHES = { results: [], matches: [{ id: "a", score: 0.99999, metadata: { genre: "jazz" } }], namespace: "", usage: { readUnits: 1 } };

function indexApi(extra: Record<string, Handler> = {}) {
  minted = 0;
  return mockApi({
    ...signedIn(),
    "GET /api/v1/tenants/acme/indexes": () => ({ data: [INDEX], next_cursor: null }),
    "GET /api/v1/tenants/acme/indexes/docs": () => INDEX,
    "GET /api/v1/tenants/acme/usage/stored-vectors": () => ({ data: [{ index: "docs", vectors: 1234 }], total: 1234 }),
    "POST /api/v1/tenants/acme/indexes/docs/playground-key": mintKey,
    "POST /v1/indexes/docs/query": () => MATCHES,
    "GET /api/v1/tenants/acme/indexes/docs/latency": () => LATENCY,
    ...extra,
  });
}

const LATENCY = {
  index: "docs", since: "2026-12-02T08:00:00Z", until: "2026-12-03T08:00:00Z", bounds_ms: [0.5, 1, 2, 3, 5],
  hours: [{ hour: "2026-12-03T07:00:00Z", requests: 42, p50_ms: 2, p95_ms: 5, p99_ms: 7.5 }],
};

const gatewayCalls = (calls: Request[]) => calls.filter((r) => r.url.startsWith(HOST));

describe("the index page", () => {
  it("is linked from the index list and shows the index's facts and vector count", async () => {
    const { calls } = indexApi();
    const { router } = renderApp("/t/acme/indexes");
    const user = userEvent.setup();
    const cell = await screen.findByRole("cell", { name: "docs" });
    await user.click(within(cell).getByRole("link", { name: "docs" }));
    expect(await screen.findByRole("heading", { level: 1, name: "docs" })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/t/acme/indexes/docs");
    const facts = screen.getByRole("region", { name: "About this index" });
    for (const text of ["3", "cosine", "shared / pgvector", "ready", "1,234", HOST]) expect(facts).toHaveTextContent(text);
    // The counts are asked for the listed indexes only, by name.
    const counted = calls.filter((r) => new URL(r.url).pathname === "/api/v1/tenants/acme/usage/stored-vectors").map((r) => new URL(r.url).searchParams.getAll("index"));
    expect(counted).toEqual([["docs"], ["docs"]]); // the list's row, then the index page's
  });

  it("answers Page not found for an index the API does not show", async () => {
    indexApi({ "GET /api/v1/tenants/acme/indexes/nope": () => apiError(404, "not_found", "No such index.") });
    renderApp("/t/acme/indexes/nope");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
  });
});

describe("the namespace stats", () => {
  it("counts vectors per namespace through the gateway with the page's key, shared with the playground", async () => {
    const stats = { namespaces: { "": { vectorCount: 5 }, books: { vectorCount: 1200 }, alpha: { vectorCount: 3 } }, dimension: 3, indexFullness: 0, totalVectorCount: 1208 };
    const { calls } = indexApi({ "POST /v1/indexes/docs/describe_index_stats": () => stats });
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Count vectors per namespace" }));
    const table = await screen.findByRole("region", { name: "Vectors per namespace" });
    expect(within(table).getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual(["(default)5", "alpha3", "books1,200"]);
    const sent = gatewayCalls(calls);
    expect(sent.map((r) => new URL(r.url).pathname)).toEqual(["/v1/indexes/docs/describe_index_stats"]);
    expect(sent[0]?.headers.get("Api-Key")).toBe("vpk_playground_1");
    expect(sent[0]?.credentials).toBe("omit");
    // The playground's query reuses the same key: one mint for the page.
    await user.click(screen.getByLabelText("Vector"));
    await user.paste("[1, 0, 0]");
    await user.click(screen.getByRole("button", { name: "Run query" }));
    await screen.findByRole("table", { name: "Results" });
    expect(calls.filter((r) => r.url.endsWith("/playground-key"))).toHaveLength(1);
  });

  it("shows the gateway's refusal with its code", async () => {
    indexApi({ "POST /v1/indexes/docs/describe_index_stats": () => apiError(503, "data_plane_unavailable", "The vector database does not answer; try again shortly.") });
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Count vectors per namespace" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("data_plane_unavailable");
  });
});

describe("the query playground", () => {
  async function fillAndRun(filter = '{"genre": {"$eq": "jazz"}}') {
    const user = userEvent.setup();
    const vector = await screen.findByLabelText("Vector");
    await user.click(vector);
    await user.paste("[1, 0, 0]");
    const topK = screen.getByLabelText("Top K");
    expect(topK).toHaveValue("10");
    await user.clear(topK);
    await user.type(topK, "2");
    const filterBox = screen.getByLabelText("Filter");
    await user.clear(filterBox);
    if (filter) {
      await user.click(filterBox);
      await user.paste(filter);
    }
    await user.click(screen.getByRole("button", { name: "Run query" }));
    return user;
  }

  it("queries the gateway at the host with a minted key and shows the matches and the latency", async () => {
    const { calls } = indexApi();
    renderApp("/t/acme/indexes/docs");
    expect(await screen.findByRole("heading", { name: "Query playground" })).toBeInTheDocument();
    await fillAndRun();
    const table = await screen.findByRole("table", { name: "Results" });
    expect(within(table).getByRole("cell", { name: "a" })).toBeInTheDocument();
    expect(within(table).getByText('{"genre":"jazz"}')).toBeInTheDocument();
    expect(within(table).getByRole("columnheader", { name: "Score" })).toBeInTheDocument();
    expect(screen.getByText(/^1 matches in \d+(\.\d)? ms$/)).toBeInTheDocument();

    const [query] = gatewayCalls(calls);
    expect(query?.url).toBe(`${HOST}/query`);
    expect(query?.method).toBe("POST");
    expect(query?.headers.get("Api-Key")).toBe("vpk_playground_1");
    expect(query?.headers.get("Content-Type")).toBe("application/json");
    expect(query?.credentials).toBe("omit");
    expect(await query?.json()).toEqual({ vector: [1, 0, 0], topK: 2, namespace: "", filter: { genre: { $eq: "jazz" } }, includeValues: false, includeMetadata: true });
    expect(JSON.stringify({ ...localStorage })).not.toContain("vpk_");
  });

  it("keeps the key for the next query", async () => {
    const { calls } = indexApi();
    renderApp("/t/acme/indexes/docs");
    const user = await fillAndRun("");
    await screen.findByRole("table", { name: "Results" });
    await user.click(screen.getByRole("button", { name: "Run query" }));
    await screen.findByRole("table", { name: "Results" });
    expect(gatewayCalls(calls)).toHaveLength(2);
    expect(calls.filter((r) => r.url.endsWith("/playground-key"))).toHaveLength(1);
  });

  it("shows an invalid filter on its field and sends nothing", async () => {
    const { calls } = indexApi();
    renderApp("/t/acme/indexes/docs");
    await fillAndRun('{"genre": ');
    const filter = screen.getByLabelText("Filter");
    expect(filter).toHaveAttribute("aria-invalid", "true");
    expect(filter).toHaveAccessibleDescription(/Not valid JSON/);
    expect(gatewayCalls(calls)).toHaveLength(0);
    expect(calls.filter((r) => r.url.endsWith("/playground-key"))).toHaveLength(0);
    expect(screen.queryByRole("table", { name: "Results" })).toBeNull();
  });

  it("checks the vector's length against the dimension", async () => {
    const { calls } = indexApi();
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Vector"), "[[1, 2]");
    await user.click(screen.getByRole("button", { name: "Run query" }));
    expect(screen.getByLabelText("Vector")).toHaveAccessibleDescription(/dimension is 3/);
    expect(gatewayCalls(calls)).toHaveLength(0);
  });

  it("queries by ID", async () => {
    const { calls } = indexApi();
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.selectOptions(await screen.findByLabelText("Query by"), "ID");
    expect(screen.queryByLabelText("Vector")).toBeNull();
    await user.type(screen.getByLabelText("ID"), "a");
    await user.click(screen.getByLabelText("Include values"));
    await user.click(screen.getByRole("button", { name: "Run query" }));
    await screen.findByRole("table", { name: "Results" });
    expect(await gatewayCalls(calls)[0]?.json()).toEqual({ id: "a", topK: 10, namespace: "", includeValues: true, includeMetadata: true });
  });

  it("renews the key once on a 401, then shows the gateway's error and code", async () => {
    const { calls } = indexApi({ "POST /v1/indexes/docs/query": () => apiError(401, "api_key_revoked", "This API key was revoked.") });
    renderApp("/t/acme/indexes/docs");
    await fillAndRun();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("This API key was revoked.");
    expect(alert).toHaveTextContent("api_key_revoked");
    expect(gatewayCalls(calls).map((r) => r.headers.get("Api-Key"))).toEqual(["vpk_playground_1", "vpk_playground_2"]);
  });

  it("queries with a pasted key of the user's instead, mints none, and shows its refusal without renewing", async () => {
    let revoked = false;
    const { calls } = indexApi({ "POST /v1/indexes/docs/query": () => (revoked ? apiError(401, "api_key_revoked", "This API key was revoked.") : MATCHES) });
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Your API key (optional)"), "vpk_mine.secret");
    await fillAndRun();
    expect(await screen.findByRole("table", { name: "Results" })).toBeInTheDocument();
    revoked = true;
    await user.click(screen.getByRole("button", { name: "Run query" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("api_key_revoked");
    expect(gatewayCalls(calls).map((r) => r.headers.get("Api-Key"))).toEqual(["vpk_mine.secret", "vpk_mine.secret"]);
    expect(calls.filter((r) => r.url.endsWith("/playground-key"))).toHaveLength(0);
  });

  it("shows why no key could be minted (409 index_not_ready)", async () => {
    const { calls } = indexApi({ "POST /api/v1/tenants/acme/indexes/docs/playground-key": () => apiError(409, "index_not_ready", "The index is not ready yet.") });
    renderApp("/t/acme/indexes/docs");
    await fillAndRun();
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The index is not ready yet.");
    expect(alert).toHaveTextContent("index_not_ready");
    expect(gatewayCalls(calls)).toHaveLength(0);
  });

  it("offers the current query as curl and Python, with the env var and never the key", async () => {
    indexApi();
    renderApp("/t/acme/indexes/docs");
    expect(await screen.findByText(/Fill in the form/)).toBeInTheDocument();
    await fillAndRun();
    await screen.findByRole("table", { name: "Results" });
    const curl = screen.getByRole("region", { name: "Copy as" });
    expect(curl).toHaveTextContent(`curl -sS -X POST "${HOST}/query"`);
    expect(curl).toHaveTextContent('-H "Api-Key: $VECTORPLANE_KEY"');
    expect(curl).toHaveTextContent(`pc = Pinecone(api_key=os.environ["VECTORPLANE_KEY"], host="${window.location.origin}")`);
    expect(curl).toHaveTextContent('filter={"genre": {"$eq": "jazz"}}');
    expect(curl).not.toHaveTextContent("vpk_");
    expect(within(curl).getAllByRole("button", { name: /^Copy/ })).toHaveLength(2);
  });

  it("fills the filter from an example", async () => {
    indexApi();
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: '{"year": {"$gte": 2020}}' }));
    expect(screen.getByLabelText("Filter")).toHaveValue('{"year": {"$gte": 2020}}');
  });
});

describe("the index's latency", () => {
  it("shows the last hour's percentiles from the latency API", async () => {
    indexApi();
    renderApp("/t/acme/indexes/docs");
    expect(await screen.findByRole("heading", { name: "Latency, last 24 hours" })).toBeInTheDocument();
    expect(await screen.findByText(/42 requests, p50 ≤ 2 ms, p95 ≤ 5 ms, p99 ≤ 7.5 ms/)).toBeInTheDocument();
  });

  it("teaches what to do when there is no traffic yet", async () => {
    indexApi({ "GET /api/v1/tenants/acme/indexes/docs/latency": () => ({ ...LATENCY, hours: [] }) });
    renderApp("/t/acme/indexes/docs");
    expect(await screen.findByText(/No requests answered yet/)).toBeInTheDocument();
  });
});
