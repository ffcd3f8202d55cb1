import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { apiError, mockApi, signedIn, TENANT, USER, type Handler } from "../test/mockApi";
import type { Limits } from "../api/types";
import { renderApp } from "../test/renderApp";
import { draftFrom, overrideBody } from "./OperatorTenantPage";

const STAFF = { ...USER, email: "ops@example.com", is_operator: true };
const GLOBEX = { ...TENANT, slug: "globex", name: "Globex", role: "admin" };
const PLAN_LIMITS: Limits["limits"] = {
  max_indexes: 5, max_vectors: 100000, max_storage_bytes: 1_000_000_000, max_qps: 10, max_dimension: 2000, max_upsert_batch: 1000, max_metadata_bytes: 40960,
  allowed_tiers: ["shared"], allowed_engines: ["pgvector"], max_clusters: 0, allowed_cluster_sizes: [], max_cluster_replicas: 1,
};
const PLANS = [
  { slug: "free", name: "Free", description: "", monthly_price_cents: 0, is_public: true, ...PLAN_LIMITS },
  { slug: "pro", name: "Pro", description: "", monthly_price_cents: 9900, is_public: true, ...PLAN_LIMITS, max_indexes: 50, allowed_tiers: ["shared", "dedicated"] },
];
const LIMITS: Limits = { plan: "free", overridden: ["max_qps"], limits: { ...PLAN_LIMITS, max_qps: 50 } };

function operatorApi(extra: Record<string, Handler> = {}) {
  return mockApi({
    ...signedIn([]),
    "GET /api/v1/auth/me": () => ({ user: STAFF, api_key: null }),
    "GET /api/v1/tenants/globex": () => GLOBEX,
    "GET /api/v1/tenants/globex/limits": () => LIMITS,
    "GET /api/v1/plans": () => ({ data: PLANS }),
    ...extra,
  });
}

describe("an operator's tenant page", () => {
  it("builds the overrides' body: blank is the plan's, numbers checked", () => {
    const draft = draftFrom(LIMITS);
    expect(draft.numbers.max_qps).toBe("50");
    expect(draft.numbers.max_indexes).toBe("");
    expect(draft.lists.allowed_tiers).toBeNull();
    const built = overrideBody({ ...draft, numbers: { ...draft.numbers, max_indexes: "12" }, lists: { ...draft.lists, allowed_engines: ["pgvector", "qdrant"] }, reason: "deal" });
    expect(built.body).toEqual({
      max_indexes: 12, max_vectors: null, max_storage_bytes: null, max_qps: 50, max_dimension: null, max_upsert_batch: null, max_metadata_bytes: null,
      allowed_tiers: null, allowed_engines: ["pgvector", "qdrant"], reason: "deal",
    });
    expect(overrideBody({ ...draft, numbers: { ...draft.numbers, max_upsert_batch: "5000" } }).errors?.max_upsert_batch).toMatch(/1 to 1,000/);
    expect(overrideBody({ ...draft, numbers: { ...draft.numbers, max_dimension: "-1" } }).errors?.max_dimension).toBeDefined();
  });

  it("suspends with a reason, changes the plan and saves overrides through the API", async () => {
    const sent: { route: string; body: unknown }[] = [];
    let status = "active";
    const record = (route: string, answer: () => unknown) => async (request: Request) => {
      sent.push({ route, body: request.headers.get("content-type") ? await request.json() : null });
      return answer();
    };
    operatorApi({
      "GET /api/v1/tenants/globex": () => ({ ...GLOBEX, status, status_reason: status === "suspended" ? "unpaid" : "" }),
      "POST /api/v1/tenants/globex/suspend": record("suspend", () => {
        status = "suspended";
        return { ...GLOBEX, status };
      }),
      "PUT /api/v1/tenants/globex/plan": record("plan", () => apiError(409, "plan_limits_exceeded", "The tenant uses more than that plan allows.", { plan: "free" })),
      "PUT /api/v1/tenants/globex/limits": record("limits", () => ({ ...LIMITS, overridden: ["max_indexes", "max_qps"] })),
    });
    renderApp("/operator/tenants/globex");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Reason"), "unpaid");
    await user.click(screen.getByRole("button", { name: "Suspend tenant" }));
    expect(await screen.findByText("Tenant globex suspended.")).toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Reactivate tenant" })).toBeInTheDocument();
    expect(screen.getByText("Reason: unpaid")).toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText("New plan"), "pro");
    await user.click(screen.getByRole("button", { name: "Change plan" }));
    expect(await screen.findByText(/plan_limits_exceeded/)).toBeInTheDocument();

    const indexes = screen.getByLabelText("Indexes");
    expect(indexes).toHaveAccessibleDescription(/Plan: 5; now 5\./);
    await user.type(indexes, "12");
    await user.click(screen.getByRole("button", { name: "Save overrides" }));
    expect(await screen.findByText("Limits saved: max_indexes, max_qps overridden.")).toBeInTheDocument();
    expect(sent.map((s) => s.route)).toEqual(["suspend", "plan", "limits"]);
    expect(sent[0]?.body).toEqual({ reason: "unpaid" });
    expect(sent[1]?.body).toEqual({ plan: "pro" });
    expect(sent[2]?.body).toMatchObject({ max_indexes: 12, max_qps: 50, max_vectors: null, allowed_tiers: null });
  });

  it("refuses a limit outside the API's range before sending", async () => {
    const { calls } = operatorApi();
    renderApp("/operator/tenants/globex");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Upsert batch"), "5000");
    await user.click(screen.getByRole("button", { name: "Save overrides" }));
    await waitFor(() => expect(screen.getByLabelText("Upsert batch")).toHaveAttribute("aria-invalid", "true"));
    expect(calls.some((r) => r.method === "PUT")).toBe(false);
  });

  it("is linked from the tenants list, and is not found for a user who is not staff", async () => {
    const { calls } = mockApi({ ...signedIn([{ ...TENANT, role: "owner" }]) });
    renderApp("/operator/tenants/acme");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(calls.some((r) => new URL(r.url).pathname.includes("/limits"))).toBe(false);
    operatorApi({ "GET /api/v1/operator/tenants": () => ({ data: [{ id: "1", slug: "globex", name: "Globex", plan: "free", status: "active", status_reason: "", member_count: 1, index_count: 0, cluster_count: 0, stored_vectors: 0, created_at: "2026-01-01T00:00:00Z" }], next_cursor: null }) });
    const { router } = renderApp("/operator");
    const user = userEvent.setup();
    const table = await screen.findByRole("table", { name: "Tenants" });
    await user.click(within(table).getByRole("link", { name: "Globex" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/operator/tenants/globex"));
    expect(await screen.findByRole("heading", { name: "Limit overrides" })).toBeInTheDocument();
  });
});
