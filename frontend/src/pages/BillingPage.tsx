import { lazy, Suspense, useCallback, useMemo, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError } from "../api/errors";
import type { BillingAccount, BillingUsage, Invoice, MeterUsage, Plan } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import type { Series } from "../components/TimeChart";
import { formatDate, formatNumber } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";
import { useTenant } from "./TenantLayout";

const TimeChart = lazy(() => import("../components/TimeChart"));

/** Cents as money in the billing currency: 2500 usd -> "$25.00". */
export function formatMoney(cents: number, currency: string): string {
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}

/** Whole units of the billing currency ("50", "12.5") as cents, or null when not a positive amount. */
export function parseAmount(text: string): number | null {
  if (!/^\d{1,10}(?:\.\d{1,2})?$/.test(text.trim())) return null;
  const cents = Math.round(Number(text.trim()) * 100);
  return cents >= 1 ? cents : null;
}

/** A price per unit in cents (a decimal string) as people read it: per million units when a unit costs
 * less than a hundredth of a cent ("$16.00 per million read units"), else per unit ("$0.05 per size-hour"). */
export function formatRate(rateCents: string, unit: string, currency: string): string {
  const cents = Number(rateCents);
  const one = unit.replace(/s$/, "");
  if (!(cents > 0)) return "not charged";
  if (cents < 0.01) return `${formatMoney(cents * 1_000_000, currency)} per million ${unit}`;
  try {
    const money = new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase(), minimumFractionDigits: 2, maximumFractionDigits: 6 }).format(cents / 100);
    return `${money} per ${one}`;
  } catch {
    return `${(cents / 100).toFixed(6)} ${currency.toUpperCase()} per ${one}`;
  }
}

/** A decimal quantity ("12.333333") for a table cell: grouped, at most 3 decimals. */
export function formatQuantity(quantity: string): string {
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 }).format(Number(quantity));
}

const COLORS: Record<string, string> = { read_units: "#16a34a", write_units: "#dc2626", storage_gb_hours: "#0f766e", cluster_hours: "#7c3aed" };

/** A meter's daily series as the chart's columns: x in Unix seconds (UTC midnights), the quantity per day. */
export function dailySeries(meter: MeterUsage): { x: number[]; series: Series[] } {
  return {
    x: meter.daily.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000),
    series: [{ label: `${meter.name} (${meter.unit})`, values: meter.daily.map((d) => Number(d.quantity)), color: COLORS[meter.meter] ?? "#2563eb" }],
  };
}

function MeterChart({ meter }: { meter: MeterUsage }) {
  const { x, series } = useMemo(() => dailySeries(meter), [meter]);
  return <TimeChart title={`${meter.name} per day`} x={x} series={series} height={140} />;
}

function UsageThisPeriod({ slug }: { slug: string }) {
  const load = useCallback(() => call(api.GET("/api/v1/tenants/{tenant_slug}/billing/usage", { params: { path: { tenant_slug: slug } } })), [slug]);
  const state = useAsync(load);
  const usage: BillingUsage | undefined = state.data;
  const money = (cents: string | number) => formatMoney(Number(cents), usage?.currency ?? "usd");
  return (
    <section className="card" aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage this period</h2>
      {state.status === "loading" ? <Loading what="the usage" /> : null}
      <ErrorMessage error={state.error} title="Could not load the usage." />
      {usage ? (
        <>
          <p className="hint">
            {formatDate(usage.period_start)} – {formatDate(usage.period_end)} ({usage.period_source === "subscription" ? "the subscription's period" : "the calendar month, UTC"}), up to{" "}
            {formatDate(usage.as_of)}.{usage.billing_enabled ? " The same hourly figures the meters send to Stripe." : ""}
          </p>
          {usage.billing_enabled ? null : <p role="note">Billing is off on this platform: the usage is shown at the {usage.plan_name} plan&apos;s rates, and nothing is charged.</p>}
          <div className="table-wrap" tabIndex={0} role="region" aria-label="Usage per meter">
            <table>
              <caption className="visually-hidden">Usage this period per meter, with the plan&apos;s rate and the cost so far</caption>
              <thead>
                <tr>
                  <th scope="col">Meter</th>
                  <th scope="col">Quantity</th>
                  <th scope="col">Rate</th>
                  <th scope="col">Cost so far</th>
                </tr>
              </thead>
              <tbody>
                {usage.meters.map((m) => (
                  <tr key={m.meter}>
                    <th scope="row">{m.name}</th>
                    <td>
                      {formatQuantity(m.quantity)} {m.unit}
                    </td>
                    <td>{formatRate(m.rate_cents, m.unit, usage.currency)}</td>
                    <td>{money(m.cost_cents)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row" colSpan={3}>
                    Base price ({usage.plan_name}, monthly)
                  </th>
                  <td>{money(usage.base_price_cents)}</td>
                </tr>
                <tr>
                  <th scope="row" colSpan={3}>
                    Total so far
                  </th>
                  <td>
                    <strong>{money(usage.total_cents)}</strong>
                  </td>
                </tr>
              </tfoot>
            </table>
          </div>
          <p className="hint">Stripe rounds each invoice line to a whole cent; taxes and credits, if any, show on the invoice.</p>
          {usage.meters[0]?.daily.length ? (
            <div className="usage-charts">
              <Suspense fallback={<Loading what="the charts" />}>
                {usage.meters.map((m) => (
                  <MeterChart key={m.meter} meter={m} />
                ))}
              </Suspense>
            </div>
          ) : (
            <p className="empty">The period has just begun: no usage yet.</p>
          )}
        </>
      ) : null}
    </section>
  );
}

const unix = (seconds: number) => (seconds ? new Date(seconds * 1000).toISOString() : null);

/** Where the browser goes next: Stripe's Checkout or Portal page (kept apart so tests can see it). */
export const redirect = { to: (url: string) => window.location.assign(url) };

function PlanChoice({ slug, account, plans }: { slug: string; account: BillingAccount; plans: readonly Plan[] }) {
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState("");
  const forSale = plans.filter((p) => p.is_public && p.monthly_price_cents > 0);

  async function buy(plan: string) {
    setBusy(plan);
    setError(undefined);
    try {
      const session = await call(api.POST("/api/v1/tenants/{tenant_slug}/billing/checkout", { params: { path: { tenant_slug: slug } }, body: { plan } }));
      redirect.to(session.url);
    } catch (cause) {
      setError(asApiError(cause));
      setBusy("");
    }
  }

  const exceeded = error?.code === "plan_limits_exceeded" ? (error.details.exceeded as Record<string, { used: unknown; limit: unknown }> | undefined) : undefined;
  return (
    <section className="card" aria-labelledby="plans-heading">
      <h2 id="plans-heading">Change plan</h2>
      <p className="hint">Checkout happens on Stripe&apos;s page; the plan changes once Stripe confirms the subscription (usually within seconds of paying).</p>
      <ErrorMessage error={error} title="Could not start the checkout." />
      {exceeded ? (
        <ul className="hint" aria-label="What exceeds the plan">
          {Object.entries(exceeded).map(([limit, { used, limit: allowed }]) => (
            <li key={limit}>
              {limit}: you use {JSON.stringify(used)}, the plan allows {JSON.stringify(allowed)}
            </li>
          ))}
        </ul>
      ) : null}
      <ul className="plan-choices">
        {forSale.map((p) => (
          <li key={p.slug} className="card">
            <h3>{p.name}</h3>
            <p>
              {formatMoney(p.monthly_price_cents, account.currency)} a month, plus usage · {formatNumber(p.max_indexes)} indexes · {formatNumber(p.max_vectors)} vectors
            </p>
            {account.plan === p.slug ? (
              <p className="badge badge-ready">Your plan</p>
            ) : (
              <button type="button" className="primary" disabled={busy !== ""} onClick={() => void buy(p.slug)} aria-label={`Choose ${p.name}`}>
                {busy === p.slug ? "Opening Stripe…" : `Choose ${p.name}`}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Invoices({ slug, currency }: { slug: string; currency: string }) {
  const load = useCallback(() => call(api.GET("/api/v1/tenants/{tenant_slug}/billing/invoices", { params: { path: { tenant_slug: slug } } })), [slug]);
  const state = useAsync(load);
  const row = (i: Invoice, label?: string) => (
    <tr key={label ?? i.id}>
      <td>{label ?? (i.number || i.id)}</td>
      <td>{formatDate(unix(i.period_start))} – {formatDate(unix(i.period_end))}</td>
      <td>{i.status || "—"}</td>
      <td>{formatMoney(i.total, i.currency || currency)}</td>
      <td>
        {i.hosted_invoice_url ? <a href={i.hosted_invoice_url}>View</a> : null} {i.invoice_pdf ? <a href={i.invoice_pdf}>PDF</a> : null}
      </td>
    </tr>
  );
  return (
    <section className="card" aria-labelledby="invoices-heading">
      <h2 id="invoices-heading">Invoices</h2>
      {state.status === "loading" ? <Loading what="the invoices" /> : null}
      <ErrorMessage error={state.error} title="Could not load the invoices." />
      {state.data && state.data.data.length === 0 && !state.data.upcoming ? <p className="empty">No invoices yet: the first comes with the first paid period.</p> : null}
      {state.data && (state.data.data.length > 0 || state.data.upcoming) ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Invoices">
          <table>
            <caption className="visually-hidden">Invoices, the upcoming one first</caption>
            <thead>
              <tr>
                <th scope="col">Invoice</th>
                <th scope="col">Period</th>
                <th scope="col">Status</th>
                <th scope="col">Total</th>
                <th scope="col">
                  <span className="visually-hidden">Links</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {state.data.upcoming ? row(state.data.upcoming, "Upcoming") : null}
              {state.data.data.map((i) => row(i))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function ContactForm({ slug, account, onSaved }: { slug: string; account: BillingAccount; onSaved: (a: BillingAccount) => void }) {
  const [email, setEmail] = useState(account.billing_email);
  const [line1, setLine1] = useState(account.address_line1);
  const [city, setCity] = useState(account.address_city);
  const [postal, setPostal] = useState(account.address_postal_code);
  const [country, setCountry] = useState(account.address_country);
  const [alert, setAlert] = useState(account.spend_alert_cents === null ? "" : String(account.spend_alert_cents / 100));
  const [local, setLocal] = useState<Record<string, string>>({});
  const [error, setError] = useState<ApiError | undefined>();
  const [saved, setSaved] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setSaved("");
    setError(undefined);
    const cents = alert.trim() === "" ? null : parseAmount(alert);
    const problems: Record<string, string> = {};
    if (alert.trim() !== "" && cents === null) problems.spend_alert_cents = "An amount such as 50 or 12.50, or empty for no alert.";
    if (country && !/^[A-Z]{2}$/.test(country)) problems.address_country = "Two capital letters (ISO 3166-1), e.g. DE.";
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const body = { billing_email: email, address_line1: line1, address_city: city, address_postal_code: postal, address_country: country, spend_alert_cents: cents };
      const updated = await call(api.PATCH("/api/v1/tenants/{tenant_slug}/billing", { params: { path: { tenant_slug: slug } }, body }));
      setSaved("Billing details saved.");
      onSaved(updated);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["billing_email", "address_line1", "address_city", "address_postal_code", "address_country", "spend_alert_cents"]) };
  return (
    <form className="card" aria-labelledby="contact-heading" onSubmit={submit} noValidate>
      <h2 id="contact-heading">Billing details and spend alert</h2>
      <ErrorMessage error={error} />
      <TextField label="Billing e-mail" name="billing_email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} error={fields.billing_email} hint="Invoices and payment notices go here (the owners when empty)." />
      <TextField label="Address" name="address_line1" value={line1} onChange={(e) => setLine1(e.target.value)} error={fields.address_line1} />
      <TextField label="City" name="address_city" value={city} onChange={(e) => setCity(e.target.value)} error={fields.address_city} />
      <TextField label="Postal code" name="address_postal_code" value={postal} onChange={(e) => setPostal(e.target.value)} error={fields.address_postal_code} />
      <TextField label="Country" name="address_country" value={country} maxLength={2} onChange={(e) => setCountry(e.target.value.toUpperCase())} error={fields.address_country} hint="ISO 3166-1, e.g. DE, US." />
      <TextField
        label={`Spend alert (${account.currency.toUpperCase()})`}
        name="spend_alert"
        inputMode="decimal"
        value={alert}
        onChange={(e) => setAlert(e.target.value)}
        error={fields.spend_alert_cents}
        hint="An e-mail and a banner once this period's spend passes it; empty: no alert."
      />
      <button type="submit" className="primary" disabled={busy}>
        Save billing details
      </button>
      <p role="status" aria-live="polite" className="notice">
        {saved}
      </p>
    </form>
  );
}

export function BillingPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const load = useCallback(async () => {
    const path = { tenant_slug: slug };
    const [account, plans] = await Promise.all([call(api.GET("/api/v1/tenants/{tenant_slug}/billing", { params: { path } })), call(api.GET("/api/v1/plans"))]);
    return { account, plans: plans.data };
  }, [slug]);
  const state = useAsync(load);
  const [portalError, setPortalError] = useState<ApiError | undefined>();
  const [override, setOverride] = useState<BillingAccount | null>(null);
  if (state.status === "loading") return <Loading what="billing" />;
  if (state.status === "error") return <ErrorMessage error={state.error} title="Could not load billing." />;
  const account = override ?? state.data.account;
  const plans = state.data.plans;
  const current = plans.find((p) => p.slug === account.plan);
  const admin = tenant.role === "owner" || tenant.role === "admin";

  async function portal() {
    setPortalError(undefined);
    try {
      const session = await call(api.POST("/api/v1/tenants/{tenant_slug}/billing/portal", { params: { path: { tenant_slug: slug } } }));
      redirect.to(session.url);
    } catch (cause) {
      setPortalError(asApiError(cause));
    }
  }

  return (
    <>
      <h1>Billing</h1>
      {account.spend_alert_crossed ? (
        <p role="note" className="warning">
          This period&apos;s spend passed your alert of {formatMoney(account.spend_alert_cents ?? 0, account.currency)} (an e-mail went out).
        </p>
      ) : null}
      <section className="card" aria-labelledby="current-plan-heading">
        <h2 id="current-plan-heading">
          Plan: <span className="plan">{current?.name ?? account.plan}</span>
        </h2>
        {current ? <p>{current.monthly_price_cents > 0 ? `${formatMoney(current.monthly_price_cents, account.currency)} a month, plus usage.` : "No monthly price."}</p> : null}
        {account.enabled ? (
          <dl className="facts">
            <dt>Subscription</dt>
            <dd>{account.subscription_status || "none"}</dd>
            <dt>This period</dt>
            <dd>
              {formatDate(account.current_period_start)} – {formatDate(account.current_period_end)}
            </dd>
            <dt>Payment</dt>
            <dd>
              {account.payment_state === "current" ? "up to date" : account.payment_state === "past_due" ? `past due since ${formatDate(account.payment_state_since)}` : `writes paused since ${formatDate(account.payment_state_since)}`}
            </dd>
          </dl>
        ) : (
          <p role="note">
            Billing is not enabled on this platform: plans are assigned by its operators, and nothing is charged. (An operator enables it with a Stripe key: README, &quot;Billing&quot;.)
          </p>
        )}
        {account.enabled && admin ? (
          <>
            <ErrorMessage error={portalError} title="Could not open the billing portal." />
            <button type="button" onClick={() => void portal()}>
              Manage payment and invoices
            </button>
          </>
        ) : null}
      </section>
      <UsageThisPeriod slug={slug} />
      {account.enabled && admin ? (
        <>
          <PlanChoice slug={slug} account={account} plans={plans} />
          <Invoices slug={slug} currency={account.currency} />
          <ContactForm slug={slug} account={account} onSaved={setOverride} />
        </>
      ) : null}
      {account.enabled && !admin ? <p className="hint">Admins and owners change the plan and see invoices.</p> : null}
    </>
  );
}
