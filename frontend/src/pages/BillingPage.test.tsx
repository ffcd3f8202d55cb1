import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiError, mockApi, signedIn, TENANT, type Handler } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { dailySeries, formatMoney, formatQuantity, formatRate, parseAmount, redirect } from "./BillingPage";

// uPlot draws on a canvas that jsdom lacks; the chart itself is exercised in the browser tests.
vi.mock("../components/TimeChart", () => ({
  default: ({ title, x, series }: { title: string; x: number[]; series: { values: (number | null)[] }[] }) => (
    <figure aria-label={title} data-points={x.length} data-values={series[0]?.values.join(",")} />
  ),
}));

const LIMITS = {
  max_indexes: 10, max_vectors: 1_000_000, max_storage_bytes: 1, max_qps: 10, max_dimension: 2000, max_upsert_batch: 1000, max_metadata_bytes: 40960,
  allowed_tiers: ["shared"], allowed_engines: ["pgvector"], max_clusters: 0, allowed_cluster_sizes: [], max_cluster_replicas: 1,
};
const PLANS = [
  { slug: "free", name: "Free", description: "", monthly_price_cents: 0, is_public: true, ...LIMITS },
  { slug: "starter", name: "Starter", description: "", monthly_price_cents: 2500, is_public: true, ...LIMITS },
  { slug: "pro", name: "Pro", description: "", monthly_price_cents: 25000, is_public: true, ...LIMITS },
  { slug: "enterprise", name: "Enterprise", description: "", monthly_price_cents: 0, is_public: false, ...LIMITS },
];
const ACCOUNT = {
  enabled: true, plan: "free", payment_state: "current", payment_state_since: null, grace_days: 7, suspend_days: 14, has_customer: false,
  subscription_status: "", current_period_start: null, current_period_end: null, spend_alert_cents: null, spend_alert_crossed: false, currency: "usd",
  billing_email: "", address_line1: "", address_line2: "", address_city: "", address_postal_code: "", address_state: "", address_country: "",
};
const INVOICE = {
  id: "in_1", number: "VP-0001", status: "paid", currency: "usd", total: 2500, amount_due: 2500, amount_paid: 2500, created: 1780000000,
  period_start: 1777000000, period_end: 1779600000, hosted_invoice_url: "https://invoice.stripe.com/i/1", invoice_pdf: "https://pay.stripe.com/invoice/1/pdf",
};

const DAYS = [
  { day: "2026-12-01", quantity: "0" },
  { day: "2026-12-02", quantity: "1500" },
  { day: "2026-12-03", quantity: "607" },
];
const METER_ROWS = [
  { meter: "read_units", name: "Read units", unit: "read units", quantity: "2107", rate_cents: "0.0016", cost_cents: "3.3712", daily: DAYS },
  { meter: "write_units", name: "Write units", unit: "write units", quantity: "50", rate_cents: "0.0004", cost_cents: "0.0200", daily: DAYS.map((d) => ({ ...d, quantity: "0" })) },
  { meter: "storage_gb_hours", name: "Storage (GB-hours)", unit: "GB-hours", quantity: "2.5", rate_cents: "0.045205479452", cost_cents: "0.1130", daily: DAYS },
  { meter: "cluster_hours", name: "Dedicated cluster size-hours", unit: "size-hours", quantity: "12.333333", rate_cents: "5", cost_cents: "61.6667", daily: DAYS },
] as const;
const USAGE = {
  billing_enabled: true, plan: "starter", plan_name: "Starter", currency: "usd", period_start: "2026-12-01T00:00:00Z", period_end: "2027-01-01T00:00:00Z",
  period_source: "calendar_month", as_of: "2026-12-03T10:20:00Z", base_price_cents: 2500, usage_cents: "65.1709", total_cents: "2565.1709", meters: METER_ROWS,
};

function billingApi(extra: Record<string, Handler> = {}, tenant = TENANT) {
  return mockApi({
    ...signedIn([tenant]),
    "GET /api/v1/tenants/acme/billing": () => ACCOUNT,
    "GET /api/v1/plans": () => ({ data: PLANS }),
    "GET /api/v1/tenants/acme/billing/usage": () => USAGE,
    "GET /api/v1/tenants/acme/billing/invoices": () => ({ data: [INVOICE], upcoming: { ...INVOICE, id: "", number: "", status: "draft", total: 2742, hosted_invoice_url: "", invoice_pdf: "" } }),
    ...extra,
  });
}

afterEach(() => vi.restoreAllMocks());

describe("billing", () => {
  it("formats money and parses an alert amount", () => {
    expect(formatMoney(2500, "usd")).toBe("$25.00");
    expect(parseAmount("12.5")).toBe(1250);
    expect(parseAmount("0")).toBeNull();
    expect(parseAmount("1e3")).toBeNull();
    expect(parseAmount("-5")).toBeNull();
  });

  it("formats rates, quantities and a meter's daily series", () => {
    expect(formatRate("0.0016", "read units", "usd")).toBe("$16.00 per million read units");
    expect(formatRate("5", "size-hours", "usd")).toBe("$0.05 per size-hour");
    expect(formatRate("0.045205479452", "GB-hours", "usd")).toBe("$0.000452 per GB-hour");
    expect(formatRate("0", "read units", "usd")).toBe("not charged");
    expect(formatQuantity("12.333333")).toBe("12.333");
    expect(formatQuantity("2107")).toBe("2,107");
    const { x, series } = dailySeries(METER_ROWS[0]);
    expect(x).toEqual([Date.UTC(2026, 11, 1) / 1000, Date.UTC(2026, 11, 2) / 1000, Date.UTC(2026, 11, 3) / 1000]);
    expect(series[0]?.values).toEqual([0, 1500, 607]);
  });

  it("shows the usage this period per meter with its rate and cost, the base price and the total, and a chart per meter", async () => {
    billingApi();
    renderApp("/t/acme/billing");
    const table = await screen.findByRole("region", { name: "Usage per meter" });
    const read = within(table).getByRole("row", { name: /Read units/ });
    expect(read).toHaveTextContent("2,107 read units");
    expect(read).toHaveTextContent("$16.00 per million read units");
    expect(read).toHaveTextContent("$0.03");
    expect(within(table).getByRole("row", { name: /Dedicated cluster size-hours/ })).toHaveTextContent("$0.62");
    expect(within(table).getByRole("row", { name: /Base price \(Starter, monthly\)/ })).toHaveTextContent("$25.00");
    expect(within(table).getByRole("row", { name: /Total so far/ })).toHaveTextContent("$25.65");
    expect(screen.getByText(/the calendar month, UTC/)).toBeInTheDocument();
    for (const name of ["Read units", "Write units", "Storage (GB-hours)", "Dedicated cluster size-hours"]) {
      expect(await screen.findByRole("figure", { name: `${name} per day` })).toHaveAttribute("data-points", "3");
    }
    expect(screen.getByRole("figure", { name: "Read units per day" })).toHaveAttribute("data-values", "0,1500,607");
    expect(screen.queryByText(/Billing is off on this platform/)).not.toBeInTheDocument();
  });

  it("shows the usage to a viewer and with billing off, at the plan's rates", async () => {
    billingApi(
      {
        "GET /api/v1/tenants/acme/billing": () => ({ ...ACCOUNT, enabled: false }),
        "GET /api/v1/tenants/acme/billing/usage": () => ({ ...USAGE, billing_enabled: false, period_source: "subscription" }),
      },
      { ...TENANT, role: "viewer" },
    );
    renderApp("/t/acme/billing");
    expect(await screen.findByText(/Billing is off on this platform: the usage is shown at the Starter plan's rates/)).toBeInTheDocument();
    expect(screen.getByText(/the subscription's period/)).toBeInTheDocument();
    expect(within(screen.getByRole("region", { name: "Usage per meter" })).getByRole("row", { name: /Write units/ })).toHaveTextContent("50 write units");
  });

  it("says when the period has no day yet, and shows the usage's error with its code", async () => {
    billingApi({ "GET /api/v1/tenants/acme/billing/usage": () => ({ ...USAGE, meters: METER_ROWS.map((m) => ({ ...m, daily: [] })) }) });
    const first = renderApp("/t/acme/billing");
    expect(await screen.findByText("The period has just begun: no usage yet.")).toBeInTheDocument();
    expect(screen.queryByRole("figure")).not.toBeInTheDocument();
    first.unmount();
    billingApi({ "GET /api/v1/tenants/acme/billing/usage": () => apiError(403, "insufficient_scope", "This API key lacks the admin scope needed by the management API.") });
    renderApp("/t/acme/billing");
    expect(await screen.findByText(/Could not load the usage/)).toBeInTheDocument();
    expect(screen.getByText(/insufficient_scope/)).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: /Plan:/ })).toBeInTheDocument(); // the rest of the page still shows
  });

  it("says so when the platform runs without billing", async () => {
    billingApi({ "GET /api/v1/tenants/acme/billing": () => ({ ...ACCOUNT, enabled: false }) });
    renderApp("/t/acme/billing");
    expect(await screen.findByText(/Billing is not enabled on this platform/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Choose/ })).not.toBeInTheDocument();
  });

  it("sends the browser to Stripe's Checkout for a paid plan, and shows what exceeds a plan", async () => {
    const went = vi.spyOn(redirect, "to").mockImplementation(() => undefined);
    let answer: () => unknown = () =>
      apiError(409, "plan_limits_exceeded", "The tenant uses more than the starter plan allows (max_indexes).", { plan: "starter", exceeded: { max_indexes: { used: 12, limit: 10 } } });
    const bodies: unknown[] = [];
    billingApi({
      "POST /api/v1/tenants/acme/billing/checkout": async (request) => {
        bodies.push(await request.json());
        return answer();
      },
    });
    renderApp("/t/acme/billing");
    const user = userEvent.setup();
    expect(await screen.findByRole("heading", { name: "Change plan" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Choose Enterprise" })).not.toBeInTheDocument(); // private
    await user.click(screen.getByRole("button", { name: "Choose Starter" }));
    expect(await screen.findByText(/plan_limits_exceeded/)).toBeInTheDocument();
    expect(within(screen.getByRole("list", { name: "What exceeds the plan" })).getByText(/max_indexes: you use 12, the plan allows 10/)).toBeInTheDocument();
    answer = () => json201({ id: "cs_test_1", url: "https://checkout.stripe.com/c/pay/cs_test_1" });
    await user.click(screen.getByRole("button", { name: "Choose Pro" }));
    await waitFor(() => expect(went).toHaveBeenCalledWith("https://checkout.stripe.com/c/pay/cs_test_1"));
    expect(bodies).toEqual([{ plan: "starter" }, { plan: "pro" }]);
  });

  it("lists invoices with the upcoming one, and saves the contact and spend alert", async () => {
    const patched: unknown[] = [];
    billingApi({
      "PATCH /api/v1/tenants/acme/billing": async (request) => {
        const body = (await request.json()) as Record<string, unknown>;
        patched.push(body);
        return { ...ACCOUNT, ...body };
      },
    });
    renderApp("/t/acme/billing");
    const user = userEvent.setup();
    const table = await screen.findByRole("region", { name: "Invoices" });
    const rows = await within(table).findAllByRole("row");
    expect(rows.map((r) => r.textContent)).toEqual([expect.stringContaining("Invoice"), expect.stringContaining("Upcoming"), expect.stringContaining("VP-0001")]);
    expect(within(table).getByText("$27.42")).toBeInTheDocument();
    expect(within(table).getByRole("link", { name: "PDF" })).toHaveAttribute("href", INVOICE.invoice_pdf);
    await user.type(screen.getByLabelText("Billing e-mail"), "ap@acme.test");
    await user.type(screen.getByLabelText("Country"), "de");
    await user.type(screen.getByLabelText("Spend alert (USD)"), "abc");
    await user.click(screen.getByRole("button", { name: "Save billing details" }));
    expect(screen.getByLabelText("Spend alert (USD)")).toHaveAttribute("aria-invalid", "true");
    expect(patched).toEqual([]);
    await user.clear(screen.getByLabelText("Spend alert (USD)"));
    await user.type(screen.getByLabelText("Spend alert (USD)"), "50");
    await user.click(screen.getByRole("button", { name: "Save billing details" }));
    expect(await screen.findByText("Billing details saved.")).toBeInTheDocument();
    expect(patched[0]).toMatchObject({ billing_email: "ap@acme.test", address_country: "DE", spend_alert_cents: 5000 });
  });

  it("shows the past-due and paused banners on every page, and no admin parts to a viewer", async () => {
    billingApi({}, { ...TENANT, role: "viewer", payment_state: "payment_required", payment_state_since: "2026-12-01T00:00:00Z" });
    renderApp("/t/acme/billing");
    expect(await screen.findByText(/Writes are paused \(402 payment_required\)/)).toBeInTheDocument();
    expect(await screen.findByText("Admins and owners change the plan and see invoices.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Manage payment and invoices" })).not.toBeInTheDocument();
  });
});

function json201(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 201, headers: { "Content-Type": "application/json" } });
}
