import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { apiError, mockApi, signedIn, TENANT, USER } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { tenantQuery } from "./OperatorPages";

const STAFF = { ...USER, email: "ops@example.com", is_operator: true };

function tenantRow(slug: string, name: string, extra: Record<string, unknown> = {}) {
  return {
    id: `00000000-0000-4000-8000-${slug.padStart(12, "0").slice(-12)}`,
    slug,
    name,
    plan: "free",
    status: "active",
    status_reason: "",
    member_count: 2,
    index_count: 3,
    cluster_count: 0,
    stored_vectors: 12345,
    created_at: "2026-01-01T00:00:00Z",
    ...extra,
  };
}

const CLUSTER = {
  id: "11111111-1111-4111-8111-111111111111",
  tenant: "globex",
  name: "search",
  engine: "qdrant",
  size: "m",
  replicas: 2,
  status: "failed",
  status_message: "no capacity",
  last_error: "no capacity in the pool",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-02T00:00:00Z",
};

/** A signed-in staff user (who belongs to no tenant) and the operator API's answers. */
function staffApi(extra: Record<string, Parameters<typeof mockApi>[0][string]> = {}) {
  return mockApi({
    ...signedIn([]),
    "GET /api/v1/auth/me": () => ({ user: STAFF, api_key: null }),
    ...extra,
  });
}

describe("tenantQuery", () => {
  it("leaves out empty filters and trims the search", () => {
    expect(tenantQuery({ q: "  ", status: "" })).toEqual({});
    expect(tenantQuery({ q: " acme ", status: "suspended" })).toEqual({ q: "acme", status: "suspended" });
  });
});

describe("the platform pages", () => {
  it("lists every tenant with its counts, filters through the API and loads more", async () => {
    const { calls } = staffApi({
      "GET /api/v1/operator/tenants": (request) => {
        const params = new URL(request.url).searchParams;
        if (params.get("cursor") === "next") return { data: [tenantRow("initech", "Initech")], next_cursor: null };
        if (params.get("q") === "nothing") return { data: [], next_cursor: null };
        if (params.get("status") === "suspended") {
          return { data: [tenantRow("globex", "Globex", { status: "suspended", status_reason: "unpaid", stored_vectors: null })], next_cursor: null };
        }
        return { data: [tenantRow("acme", "Acme"), tenantRow("globex", "Globex")], next_cursor: "next" };
      },
    });
    renderApp("/operator");
    const user = userEvent.setup();
    const table = await screen.findByRole("table", { name: "Tenants" });
    const acme = within(table).getByText("Acme").closest("tr");
    expect(acme).not.toBeNull();
    expect(within(acme as HTMLElement).getByText((12345).toLocaleString())).toBeInTheDocument();
    expect(within(acme as HTMLElement).getByText("3")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await within(table).findByText("Initech")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText("Status"), "suspended");
    await user.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(await screen.findByText("unpaid")).toBeInTheDocument();
    expect(screen.getByText("unavailable")).toBeInTheDocument(); // stored vectors: storage down
    expect(screen.queryByText("Acme")).not.toBeInTheDocument();
    const last = calls.filter((c) => new URL(c.url).pathname === "/api/v1/operator/tenants").at(-1);
    expect(new URL(last?.url ?? "http://x").searchParams.get("status")).toBe("suspended");

    await user.selectOptions(screen.getByLabelText("Status"), "");
    await user.type(screen.getByLabelText("Search"), "nothing");
    await user.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(await screen.findByRole("heading", { name: "No tenants match these filters" })).toBeInTheDocument();
  });

  it("lists every tenant's clusters with their last error, by status", async () => {
    const { calls } = staffApi({
      "GET /api/v1/operator/clusters": (request) => {
        const status = new URL(request.url).searchParams.get("status");
        return { data: status === "ready" ? [] : [CLUSTER], next_cursor: null };
      },
    });
    renderApp("/operator/clusters");
    const user = userEvent.setup();
    const table = await screen.findByRole("table", { name: "Clusters" });
    expect(within(table).getByText("globex")).toBeInTheDocument();
    expect(within(table).getByText("no capacity in the pool")).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText("Status"), "ready");
    expect(await screen.findByRole("heading", { name: "No ready clusters" })).toBeInTheDocument();
    const last = calls.filter((c) => new URL(c.url).pathname === "/api/v1/operator/clusters").at(-1);
    expect(new URL(last?.url ?? "http://x").searchParams.get("status")).toBe("ready");
  });

  it("shows each part's health, and the error of one that is down", async () => {
    staffApi({
      "GET /api/v1/operator/health": () => ({
        status: "degraded",
        parts: [
          { name: "database", ok: true, latency_ms: 1.5, error: "", target: "control-plane PostgreSQL" },
          { name: "broker", ok: true, latency_ms: 3, error: "", target: "redis://127.0.0.1:6379/0" },
          { name: "gateway", ok: false, latency_ms: 2000, error: "URLError: connection refused", target: "http://127.0.0.1:1/readyz" },
        ],
      }),
    });
    renderApp("/operator/health");
    expect(await screen.findByText("Some parts do not answer.")).toBeInTheDocument();
    const gateway = screen.getByRole("listitem", { name: "Gateway" });
    expect(within(gateway).getByText("error")).toBeInTheDocument();
    expect(within(gateway).getByText("URLError: connection refused")).toBeInTheDocument();
    expect(within(gateway).getByText("2000 ms")).toBeInTheDocument();
    const database = screen.getByRole("listitem", { name: "Database" });
    expect(within(database).getByText("ok")).toBeInTheDocument();
    expect(within(database).queryByText("Error")).not.toBeInTheDocument();
  });

  it("shows an API error with its code", async () => {
    staffApi({ "GET /api/v1/operator/health": () => apiError(400, "validation_error", "Bad.") });
    renderApp("/operator/health");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not check the platform's health.");
    expect(within(alert).getByText("validation_error")).toBeInTheDocument();
  });

  it("links the platform pages from the header for staff only", async () => {
    staffApi({ "GET /api/v1/operator/tenants": () => ({ data: [], next_cursor: null }) });
    renderApp("/operator");
    expect(await screen.findByRole("heading", { name: "No tenants yet" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Platform" })).toHaveAttribute("href", "/operator");
  });

  it("is the not-found page for a user who is not staff, and asks the API nothing", async () => {
    const { calls } = mockApi({ ...signedIn([{ ...TENANT, role: "owner" }]) });
    renderApp("/operator/clusters");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(calls.some((c) => new URL(c.url).pathname.startsWith("/api/v1/operator"))).toBe(false);
  });

  it("has no Platform link for a user who is not staff", async () => {
    mockApi({
      ...signedIn([{ ...TENANT, role: "owner" }]),
      "GET /api/v1/tenants/acme/indexes": () => ({ data: [], next_cursor: null }),
      "GET /api/v1/tenants/acme/usage/stored-vectors": () => ({ data: [], total: 0 }),
      "GET /api/v1/tenants/acme/usage": () => ({ data: [], next_cursor: null }),
    });
    renderApp("/t/acme/indexes");
    expect(await screen.findByRole("link", { name: "Vectorplane" })).toBeInTheDocument();
    expect(await screen.findByRole("heading", { name: "Indexes" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Platform" })).not.toBeInTheDocument();
  });
});
