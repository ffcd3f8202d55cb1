import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { apiError, mockApi, signedIn, TENANT } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { parseTags, tagChanges } from "./IndexSettings";

const INDEX = {
  id: "1b8f8c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", name: "docs", dimension: 3, metric: "cosine", engine: "pgvector", tier: "shared", vector_type: "vector",
  hnsw_m: 16, hnsw_ef_construction: 64, ef_search: 100, text_field: false, deletion_protection: false, tags: { env: "dev", team: "search" },
  cloud: "aws", region: "us-east-1", status: "ready", cluster: null, host: "http://gw.test/v1/indexes/docs", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z",
};

function api(extra: Record<string, (request: Request) => unknown> = {}, tenant = TENANT) {
  return mockApi({
    ...signedIn([tenant]),
    "GET /api/v1/tenants/acme/indexes/docs": () => INDEX,
    "GET /api/v1/tenants/acme/usage/stored-vectors": () => ({ data: [], total: 0 }),
    "GET /api/v1/tenants/acme/indexes/docs/latency": () => ({ index: "docs", since: "2026-12-02T00:00:00Z", until: "2026-12-03T00:00:00Z", bounds_ms: [1], hours: [] }),
    ...extra,
  });
}

describe("index settings", () => {
  it("parses tags and sends only what changed (a removed tag as empty)", () => {
    expect(parseTags("env=prod\n\n team = search ")).toEqual({ tags: { env: "prod", team: "search" } });
    expect(parseTags("bad key=x")).toEqual({ error: expect.stringContaining("Line 1") as string });
    expect(parseTags("env")).toEqual({ error: expect.stringContaining("value") as string });
    expect(tagChanges({ env: "dev", team: "search" }, { env: "prod", tier: "1" })).toEqual({ team: "", env: "prod", tier: "1" });
  });

  it("saves ef_search, protection and tags through PATCH, and shows the API's field error", async () => {
    const bodies: unknown[] = [];
    let answer: () => unknown = () => apiError(400, "validation_error", "Invalid input.", { fields: { ef_search: ["Ensure this value is less than or equal to 1000."] } });
    api({
      "PATCH /api/v1/tenants/acme/indexes/docs": async (request) => {
        bodies.push(await request.json());
        return answer();
      },
    });
    renderApp("/t/acme/indexes/docs");
    const user = userEvent.setup();
    const ef = await screen.findByLabelText("ef_search");
    await user.clear(ef);
    await user.type(ef, "200");
    await user.click(screen.getByLabelText("Deletion protection"));
    const tags = screen.getByLabelText("Tags");
    await user.clear(tags);
    await user.type(tags, "env=prod");
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    await waitFor(() => expect(screen.getByLabelText("ef_search")).toHaveAttribute("aria-invalid", "true"));
    answer = () => ({ ...INDEX, ef_search: 200, deletion_protection: true, tags: { env: "prod" } });
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    expect(await screen.findByText("Settings saved.")).toBeInTheDocument();
    expect(bodies[1]).toEqual({ ef_search: 200, deletion_protection: true, tags: { env: "prod", team: "" } });
  });

  it("checks before sending, and a viewer cannot edit", async () => {
    const { calls } = api({}, { ...TENANT, role: "viewer" });
    renderApp("/t/acme/indexes/docs");
    expect(await screen.findByText("Viewers cannot change an index.")).toBeInTheDocument();
    expect(screen.getByLabelText("ef_search")).toBeDisabled();
    expect(screen.queryByRole("button", { name: "Save settings" })).not.toBeInTheDocument();
    expect(calls.some((r) => r.method === "PATCH")).toBe(false);
  });
});
