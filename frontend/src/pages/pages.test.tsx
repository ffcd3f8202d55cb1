import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { apiError, mockApi, signedIn, TENANT, type Handler } from "../test/mockApi";
import { renderApp } from "../test/renderApp";

const empty = () => ({ data: [], next_cursor: null });
const LIMITS = {
  plan: "free",
  overridden: [],
  limits: {
    max_indexes: 5,
    max_vectors: 100000,
    max_storage_bytes: 1_000_000_000,
    max_qps: 10,
    max_dimension: 2000,
    max_upsert_batch: 1000,
    max_metadata_bytes: 40960,
    allowed_tiers: ["shared"],
    allowed_engines: ["pgvector"],
    max_clusters: 0,
    allowed_cluster_sizes: [],
    max_cluster_replicas: 1,
  },
};
const SUMMARY = { since: "2026-11-26T00:00:00Z", until: "2026-12-03T00:00:00Z", indexes: 0, clusters: 0, hours: [], errors_by_code: [] };

function tenantApi(extra: Record<string, Handler> = {}) {
  return mockApi({
    ...signedIn(),
    "GET /api/v1/tenants/acme/indexes": empty,
    "GET /api/v1/tenants/acme/api-keys": empty,
    "GET /api/v1/tenants/acme/members": empty,
    "GET /api/v1/tenants/acme/audit-events": empty,
    "GET /api/v1/tenants/acme/invitations": empty,
    "GET /api/v1/tenants/acme/usage/summary": () => SUMMARY,
    "GET /api/v1/tenants/acme/usage/stored-vectors": () => ({ data: [], total: 0 }),
    "GET /api/v1/tenants/acme/limits": () => LIMITS,
    ...extra,
  });
}

describe("routing", () => {
  it("sends an unauthenticated user to sign in", async () => {
    mockApi({ "GET /api/v1/auth/me": () => apiError(401, "unauthenticated", "Sign in first.") });
    const { router } = renderApp("/t/acme/indexes");
    expect(await screen.findByRole("button", { name: "Sign in" })).toBeInTheDocument();
    expect(screen.getByLabelText("Email")).toBeInTheDocument();
    expect(screen.getByLabelText("Password")).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/sign-in");
  });

  it("shows a failed sign-in's message and code", async () => {
    mockApi({
      "GET /api/v1/auth/me": () => apiError(401, "unauthenticated", "Sign in first."),
      "GET /api/v1/auth/csrf": () => ({ csrf_token: "t" }),
      "POST /api/v1/auth/login": () => apiError(401, "invalid_credentials", "Wrong email or password."),
    });
    renderApp("/sign-in");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "nope-nope");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Wrong email or password.");
    expect(alert).toHaveTextContent("invalid_credentials");
  });

  it("lands a user with several tenants on the last one used", async () => {
    const globex = { ...TENANT, slug: "globex", name: "Globex" };
    mockApi({ ...signedIn([TENANT, globex]) });
    localStorage.setItem("vectorplane.lastTenant", "globex");
    const { router } = renderApp("/");
    await waitFor(() => expect(router.state.location.pathname).toBe("/t/globex"));
  });

  it("offers the create-tenant form to a user without a tenant", async () => {
    mockApi({ ...signedIn([]) });
    const { router } = renderApp("/");
    expect(await screen.findByLabelText("Tenant name")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Create tenant" })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe("/new-tenant");
  });

  it("answers Page not found for an unknown route", async () => {
    mockApi(signedIn());
    renderApp("/no/such/page");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
  });

  it("answers Page not found for a tenant the API answers 404 for", async () => {
    mockApi(signedIn()); // no handler for GET /api/v1/tenants/globex: 404 not_found
    renderApp("/t/globex/indexes");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Indexes" })).not.toBeInTheDocument();
  });
});

describe("empty states", () => {
  it("overview: plan, limits and no traffic yet", async () => {
    tenantApi();
    renderApp("/t/acme");
    expect(await screen.findByRole("heading", { name: /Plan: free/ })).toBeInTheDocument();
    expect(screen.getByText(/No traffic yet/)).toBeInTheDocument();
    expect(screen.getByText(/No vectors stored/)).toBeInTheDocument();
    expect(screen.getByLabelText("Tenant")).toHaveValue("acme");
    for (const name of ["Overview", "Indexes", "Clusters", "API keys", "Members", "Audit log", "Billing"]) {
      expect(screen.getByRole("link", { name })).toBeInTheDocument();
    }
    expect(screen.getByRole("button", { name: "Sign out" })).toBeInTheDocument();
  });

  it("overview: use against the plan, errors by code and stored vectors from one summary", async () => {
    const hour = (h: number, fields: Record<string, number | null>) => ({
      hour: `2026-12-02T${String(h).padStart(2, "0")}:00:00Z`,
      requests: 0, read_units: 0, write_units: 0, queries: 0, vectors_written: 0, vectors_deleted: 0, error_requests: 0, stored_vectors: null,
      ...fields,
    });
    const { calls } = tenantApi({
      "GET /api/v1/tenants/acme/limits": () => ({ ...LIMITS, limits: { ...LIMITS.limits, max_clusters: 2, allowed_cluster_sizes: ["xs", "s"], max_cluster_replicas: 3 } }),
      "GET /api/v1/tenants/acme/usage/summary": () => ({
        ...SUMMARY,
        indexes: 3,
        clusters: 1,
        hours: [hour(11, { requests: 7200, read_units: 40, error_requests: 5, stored_vectors: 1500 }), hour(9, { requests: 100, write_units: 9 })],
        errors_by_code: [
          { code: "rate_limited", status: 429, requests: 4 },
          { code: "invalid_filter", status: 400, requests: 1 },
        ],
      }),
      "GET /api/v1/tenants/acme/usage/stored-vectors": (request) => {
        expect(new URL(request.url).searchParams.get("largest")).toBe("10");
        return { data: [{ index: "docs", vectors: 1500 }], total: 1500 };
      },
    });
    renderApp("/t/acme");
    expect(await screen.findByRole("heading", { name: /Plan: free/ })).toBeInTheDocument();
    expect(screen.getByLabelText("Indexes: 3 of 5")).toBeInTheDocument();
    expect(screen.getByLabelText("Dedicated clusters: 1 of 2")).toBeInTheDocument();
    expect(screen.getByText(/busiest hour of the week: 2.00 req\/s/)).toBeInTheDocument();
    expect(screen.getByText(/7,300 requests, 40 read units, 9 write units/)).toBeInTheDocument();
    const codes = within(screen.getByRole("region", { name: "Errors by code" }));
    expect(codes.getAllByRole("row").slice(1).map((r) => r.textContent)).toEqual(["rate_limited4294", "invalid_filter4001"]);
    expect(screen.getByText("xs, s / up to 3")).toBeInTheDocument();
    // One summary request, whatever the number of indexes (no per-index pages).
    const usage = calls.map((c) => `${c.method} ${new URL(c.url).pathname}`).filter((c) => c.startsWith("GET /api/v1/tenants/acme/usage"));
    expect(usage.sort()).toEqual([
      "GET /api/v1/tenants/acme/usage/stored-vectors",
      "GET /api/v1/tenants/acme/usage/summary",
    ]);
  });

  it("indexes: teaches to create one", async () => {
    tenantApi();
    renderApp("/t/acme/indexes");
    expect(await screen.findByRole("heading", { name: "No indexes yet — create one" })).toBeInTheDocument();
    expect(screen.getByLabelText("Name")).toBeInTheDocument();
    expect(screen.getByLabelText("Dimension")).toBeInTheDocument();
    const metric = screen.getByLabelText("Metric");
    expect(within(metric).getAllByRole("option").map((o) => o.textContent)).toEqual(["cosine", "euclidean", "dotproduct"]);
    expect(screen.getByRole("button", { name: "Create index" })).toBeInTheDocument();
  });

  it("API keys: teaches to mint one", async () => {
    tenantApi();
    renderApp("/t/acme/keys");
    expect(await screen.findByRole("heading", { name: "No API keys yet — mint one" })).toBeInTheDocument();
    expect(screen.getByLabelText("Key name")).toBeInTheDocument();
    for (const scope of ["read", "write", "admin"]) expect(screen.getByRole("checkbox", { name: scope })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Mint key" })).toBeInTheDocument();
  });

  it("members: explains invitations", async () => {
    tenantApi();
    renderApp("/t/acme/members");
    expect(await screen.findByRole("heading", { name: "No members to show" })).toBeInTheDocument();
  });

  it("audit log: explains what is recorded", async () => {
    tenantApi();
    renderApp("/t/acme/audit");
    expect(await screen.findByRole("heading", { name: "No events yet" })).toBeInTheDocument();
  });

  it("shows a list's API error with its code", async () => {
    tenantApi({ "GET /api/v1/tenants/acme/audit-events": () => apiError(403, "permission_denied", "Admins only.", { required_role: "admin" }) });
    renderApp("/t/acme/audit");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Admins only.");
    expect(alert).toHaveTextContent("permission_denied");
  });
});

describe("forms", () => {
  it("shows the API's field error on the index form's field", async () => {
    tenantApi({ "POST /api/v1/tenants/acme/indexes": () => apiError(409, "index_exists", "An index named 'docs' exists.", { name: "docs" }) });
    renderApp("/t/acme/indexes");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Name"), "docs");
    await user.type(screen.getByLabelText("Dimension"), "8");
    await user.click(screen.getByRole("button", { name: "Create index" }));
    await waitFor(() => expect(screen.getByLabelText("Name")).toHaveAccessibleDescription(/An index named 'docs' exists\./));
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByRole("alert")).toHaveTextContent("index_exists");
  });

  it("creates an index on a ready dedicated cluster with its tuning, and shows a cluster error on the Where field", async () => {
    const cluster = (name: string, engine: string, status: string) => ({
      id: name, name, engine, driver: "local", size: "s", replicas: 1, status, status_message: "", generation: 1, observed_generation: 1, indexes: [],
      created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", ready_at: null,
    });
    const bodies: unknown[] = [];
    tenantApi({
      "GET /api/v1/tenants/acme/limits": () => ({ ...LIMITS, limits: { ...LIMITS.limits, allowed_tiers: ["shared", "dedicated"], allowed_engines: ["pgvector", "qdrant"], max_clusters: 2 } }),
      "GET /api/v1/tenants/acme/clusters": () => ({ data: [cluster("vecs", "qdrant", "ready"), cluster("later", "pgvector", "provisioning")], next_cursor: null }),
      "POST /api/v1/tenants/acme/indexes": async (request) => {
        bodies.push(await request.json());
        return apiError(404, "not_found", "The cluster was not found.", { cluster: "vecs" });
      },
    });
    renderApp("/t/acme/indexes");
    const user = userEvent.setup();
    const where = await screen.findByLabelText("Where");
    await waitFor(() => expect(within(where).getAllByRole("option").map((o) => o.textContent)).toEqual(["Shared tier (pgvector)", "Cluster vecs (qdrant, s)"]));
    await user.selectOptions(where, "vecs");
    await user.type(screen.getByLabelText("Name"), "docs");
    await user.type(screen.getByLabelText("Dimension"), "8");
    await user.click(screen.getByText("Index tuning and protection"));
    await user.clear(screen.getByLabelText("HNSW m"));
    await user.type(screen.getByLabelText("HNSW m"), "101");
    await user.click(screen.getByRole("button", { name: "Create index" }));
    expect(screen.getByLabelText("HNSW m")).toHaveAttribute("aria-invalid", "true");
    expect(bodies).toEqual([]); // refused before sending
    await user.clear(screen.getByLabelText("HNSW m"));
    await user.type(screen.getByLabelText("HNSW m"), "32");
    await user.click(screen.getByLabelText("Deletion protection"));
    await user.click(screen.getByRole("button", { name: "Create index" }));
    await waitFor(() => expect(where).toHaveAccessibleDescription(/The cluster was not found\./));
    expect(bodies).toEqual([
      { name: "docs", dimension: 8, metric: "cosine", tier: "dedicated", engine: "qdrant", cluster: "vecs", hnsw_m: 32, hnsw_ef_construction: 64, ef_search: 100, deletion_protection: true },
    ]);
  });

  it("checks the index rules before sending", async () => {
    const { calls } = tenantApi();
    renderApp("/t/acme/indexes");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Name"), "Bad_Name");
    await user.type(screen.getByLabelText("Dimension"), "0");
    await user.click(screen.getByRole("button", { name: "Create index" }));
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Dimension")).toHaveAttribute("aria-invalid", "true");
    expect(calls.some((r) => r.method === "POST")).toBe(false);
  });

  it("mints a key, shows its secret once with Copy, and lists it with a Revoke button", async () => {
    const key = {
      id: "0b8f8c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
      name: "ingest",
      prefix: "vpk_ab12",
      status: "active",
      scopes: ["read", "write"],
      index_names: [],
      namespaces: [],
      row_filter: null,
      id_prefix: "",
      expires_at: null,
      revoke_after: null,
      revoked_at: null,
      last_used_at: null,
      rotated_from: null,
      created_at: "2026-01-01T00:00:00Z",
    };
    let keys: unknown[] = [];
    tenantApi({
      "GET /api/v1/tenants/acme/api-keys": () => ({ data: keys, next_cursor: null }),
      "POST /api/v1/tenants/acme/api-keys": () => {
        keys = [key];
        return { ...key, key: "vpk_ab12.secret" };
      },
    });
    renderApp("/t/acme/keys");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Key name"), "ingest");
    await user.click(screen.getByRole("checkbox", { name: "write" }));
    await user.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByLabelText("Secret")).toHaveValue("vpk_ab12.secret");
    expect(screen.getByRole("button", { name: "Copy" })).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Revoke ingest" })).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Done, I stored it" }));
    expect(screen.queryByLabelText("Secret")).not.toBeInTheDocument();
  });
});

describe("tenant switcher", () => {
  it("keeps the section when switching tenants", async () => {
    const { switchTo } = await import("../components/AppHeader");
    expect(switchTo("/t/acme/keys", "acme", "globex")).toBe("/t/globex/keys");
    expect(switchTo("/t/acme", "acme", "globex")).toBe("/t/globex");
    expect(switchTo("/t/acme/indexes/docs", "acme", "globex")).toBe("/t/globex/indexes");
    expect(switchTo("/t/acme/clusters/main", "acme", "globex")).toBe("/t/globex/clusters");
  });

  it("switches tenants with the Tenant select and remembers the choice", async () => {
    const globex = { ...TENANT, slug: "globex", name: "Globex" };
    tenantApi({ ...signedIn([TENANT, globex]), "GET /api/v1/tenants/globex/members": empty });
    const { router } = renderApp("/t/acme/members");
    const user = userEvent.setup();
    await user.selectOptions(await screen.findByLabelText("Tenant"), "globex");
    await waitFor(() => expect(router.state.location.pathname).toBe("/t/globex/members"));
    await waitFor(() => expect(localStorage.getItem("vectorplane.lastTenant")).toBe("globex"));
  });
});

describe("invitations", () => {
  it("invites by e-mail with a role and shows the link once", async () => {
    const { calls } = tenantApi({
      "POST /api/v1/tenants/acme/invitations": () => ({
        id: "1b8f8c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        email: "bob@example.com",
        role: "viewer",
        status: "pending",
        invited_by: "ada@example.com",
        created_at: "2026-01-01T00:00:00Z",
        expires_at: "2026-01-08T00:00:00Z",
        accepted_at: null,
        revoked_at: null,
        token: "inv_tok",
      }),
    });
    renderApp("/t/acme/members");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Email"), "bob@example.com");
    await user.selectOptions(screen.getByLabelText("Role"), "viewer");
    await user.click(screen.getByRole("button", { name: "Invite" }));
    expect(await screen.findByLabelText("Invitation link")).toHaveValue(`${window.location.origin}/console/invitations/accept?token=inv_tok`);
    const post = calls.find((r) => r.method === "POST");
    expect(await post?.clone().json()).toEqual({ email: "bob@example.com", role: "viewer" });
  });

  it("accepts an invitation and lands on its tenant", async () => {
    tenantApi({ "POST /api/v1/invitations/accept": () => ({ tenant: "acme", role: "viewer" }) });
    const { router } = renderApp("/invitations/accept?token=inv_tok");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Accept invitation" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/t/acme"));
  });

  it("shows why an invitation cannot be accepted", async () => {
    tenantApi({ "POST /api/v1/invitations/accept": () => apiError(404, "invitation_invalid", "This invitation is unknown, used, revoked or expired.") });
    renderApp("/invitations/accept?token=old");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Accept invitation" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("invitation_invalid");
  });
});
