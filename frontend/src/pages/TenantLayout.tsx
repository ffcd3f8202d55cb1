import { useCallback, useEffect } from "react";
import { Link, NavLink, Outlet, useOutletContext, useParams } from "react-router";
import { api, call } from "../api/client";
import type { Tenant } from "../api/types";
import { AppHeader } from "../components/AppHeader";
import { ErrorMessage } from "../components/ErrorMessage";
import { Loading } from "../components/Loading";
import { formatDate } from "../lib/format";
import { rememberTenant } from "../lib/tenantMemory";
import { useAsync } from "../lib/useAsync";
import { NotFound } from "./NotFound";

export interface TenantContext {
  tenant: Tenant;
}

export function useTenant(): Tenant {
  return useOutletContext<TenantContext>().tenant;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$/;

async function loadTenant(slug: string) {
  const [tenant, list] = await Promise.all([
    call(api.GET("/api/v1/tenants/{tenant_slug}", { params: { path: { tenant_slug: slug } } })),
    call(api.GET("/api/v1/tenants", { params: { query: { limit: 100 } } })),
  ]);
  const tenants = list.data.some((t) => t.slug === tenant.slug) ? list.data : [tenant, ...list.data];
  return { tenant, tenants };
}

export function TenantLayout() {
  const { slug = "" } = useParams();
  const valid = SLUG.test(slug);
  const load = useCallback(() => (valid ? loadTenant(slug) : Promise.resolve(null)), [slug, valid]);
  const state = useAsync(load);

  useEffect(() => {
    if (state.status === "ready" && state.data) rememberTenant(state.data.tenant.slug);
  }, [state.status, state.data]);

  if (!valid) return <NotFound />;
  if (state.status === "loading") return <Loading what="the tenant" />;
  if (state.status === "error") {
    if (state.error.status === 404 || state.error.code === "invalid_slug") return <NotFound />;
    return (
      <main>
        <ErrorMessage error={state.error} title="Could not load the tenant." />
      </main>
    );
  }
  if (!state.data) return <NotFound />;
  const { tenant, tenants } = state.data;
  const base = `/t/${tenant.slug}`;
  const links = [
    { to: base, label: "Overview", end: true },
    { to: `${base}/indexes`, label: "Indexes" },
    { to: `${base}/clusters`, label: "Clusters" },
    // Viewers read the tenant; keys are for members and up (the API refuses them too).
    ...(tenant.role === "viewer" ? [] : [{ to: `${base}/keys`, label: "API keys" }]),
    { to: `${base}/members`, label: "Members" },
    { to: `${base}/audit`, label: "Audit log" },
    { to: `${base}/billing`, label: "Billing" },
  ];
  return (
    <div className="shell">
      <AppHeader tenants={tenants} current={tenant.slug} />
      <nav aria-label="Console sections" className="tenant-nav">
        <ul>
          {links.map((link) => (
            <li key={link.to}>
              <NavLink to={link.to} end={link.end}>
                {link.label}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <main className="content" id="content" tabIndex={-1}>
        {tenant.status !== "active" ? (
          <p role="note" className="warning">
            This tenant is {tenant.status}
            {tenant.status_reason ? `: ${tenant.status_reason}` : ""}. Writes are refused; reads still work.
          </p>
        ) : null}
        {tenant.payment_state === "past_due" ? (
          <p role="note" className="warning">
            A payment failed on {formatDate(tenant.payment_state_since)}. Everything works for now; pay the open invoice on the <Link to={`${base}/billing`}>Billing page</Link> before the grace
            period ends, or writes will be paused.
          </p>
        ) : null}
        {tenant.payment_state === "payment_required" ? (
          <p role="note" className="warning">
            Writes are paused (402 payment_required): this tenant&apos;s payment is overdue. Reads still work. Pay on the <Link to={`${base}/billing`}>Billing page</Link>; writes resume
            within a second.
          </p>
        ) : null}
        <Outlet context={{ tenant } satisfies TenantContext} />
      </main>
    </div>
  );
}
