import { useCallback, useState, type FormEvent } from "react";
import { Link, NavLink, Outlet } from "react-router";
import { api, call } from "../api/client";
import type { ClusterStatus, PartHealth, TenantStatus } from "../api/types";
import { useAuth } from "../auth";
import { AppHeader } from "../components/AppHeader";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate, formatNumber } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { NotFound } from "./NotFound";

const TENANT_STATUSES: readonly TenantStatus[] = ["active", "suspended", "deleted"];
const CLUSTER_STATUSES: readonly ClusterStatus[] = ["pending", "provisioning", "ready", "updating", "failed", "deleting", "deleted"];

/**
 * /operator: the platform operators' pages (staff users). Anyone else sees the page an unknown
 * route shows — as the API answers them (404, like an unknown URL).
 */
export function OperatorLayout() {
  const { user } = useAuth();
  if (!user?.is_operator) return <NotFound />;
  const links = [
    { to: "/operator", label: "Tenants", end: true },
    { to: "/operator/clusters", label: "Clusters" },
    { to: "/operator/health", label: "Health" },
  ];
  return (
    <div className="shell">
      <AppHeader />
      <nav aria-label="Platform sections" className="tenant-nav">
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
        <Outlet />
      </main>
    </div>
  );
}

export interface TenantFilters {
  q: string;
  status: TenantStatus | "";
}

const NO_TENANT_FILTERS: TenantFilters = { q: "", status: "" };

/** The API's query for the tenant filters: empty ones left out. */
export function tenantQuery(filters: TenantFilters): { q?: string; status?: TenantStatus } {
  const query: { q?: string; status?: TenantStatus } = {};
  const q = filters.q.trim();
  if (q) query.q = q;
  if (filters.status) query.status = filters.status;
  return query;
}

function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

/** Every tenant of the platform, newest first, with the API's filters. */
export function OperatorTenantsPage() {
  const [draft, setDraft] = useState<TenantFilters>(NO_TENANT_FILTERS);
  const [filters, setFilters] = useState<TenantFilters>(NO_TENANT_FILTERS);
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/operator/tenants", { params: { query: { limit: 50, ...tenantQuery(filters), ...(cursor ? { cursor } : {}) } } })),
    [filters],
  );
  const list = usePaged(loadPage);
  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setFilters(draft);
  }
  const filtered = Object.keys(tenantQuery(filters)).length > 0;
  return (
    <>
      <h1>Tenants</h1>
      <form onSubmit={apply} className="card inline-form filters" aria-label="Filter the tenants">
        <TextField label="Search" name="q" value={draft.q} maxLength={100} onChange={(e) => setDraft((d) => ({ ...d, q: e.target.value }))} hint="Part of the slug or the name." autoComplete="off" />
        <SelectField label="Status" name="status" value={draft.status} onChange={(e) => setDraft((d) => ({ ...d, status: e.target.value as TenantFilters["status"] }))}>
          <option value="">Any</option>
          {TENANT_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </SelectField>
        <button type="submit" className="primary">
          Apply filters
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(NO_TENANT_FILTERS);
            setFilters(NO_TENANT_FILTERS);
          }}
        >
          Clear
        </button>
      </form>
      {list.status === "loading" ? <Loading what="tenants" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the tenants." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-tenants">
          <h2 id="no-tenants">{filtered ? "No tenants match these filters" : "No tenants yet"}</h2>
          <p>Every tenant of the platform is listed here, whoever created it.</p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Tenants">
          <table>
            <caption className="visually-hidden">Tenants</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Plan</th>
                <th scope="col">Status</th>
                <th scope="col">Members</th>
                <th scope="col">Indexes</th>
                <th scope="col">Clusters</th>
                <th scope="col">Stored vectors</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((t) => (
                <tr key={t.id}>
                  <td className="row-name">
                    <Link to={`/operator/tenants/${t.slug}`}>{t.name}</Link> <code>{t.slug}</code>
                  </td>
                  <td>{t.plan}</td>
                  <td>
                    <StatusBadge status={t.status} />
                    {t.status_reason ? <span className="hint"> {t.status_reason}</span> : null}
                  </td>
                  <td>{formatNumber(t.member_count)}</td>
                  <td>{formatNumber(t.index_count)}</td>
                  <td>{formatNumber(t.cluster_count)}</td>
                  <td>{t.stored_vectors === null ? <span title="The tenant's storage did not answer">unavailable</span> : formatNumber(t.stored_vectors)}</td>
                  <td>{formatDate(t.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} error={list.moreError} onClick={list.loadMore} />
    </>
  );
}

/** Every tenant's dedicated clusters, newest first, filtered by status. */
export function OperatorClustersPage() {
  const [status, setStatus] = useState<ClusterStatus | "">("");
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/operator/clusters", { params: { query: { limit: 50, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) } } })),
    [status],
  );
  const list = usePaged(loadPage);
  return (
    <>
      <h1>Clusters</h1>
      <form className="card inline-form filters" aria-label="Filter the clusters" onSubmit={(e) => e.preventDefault()}>
        <SelectField label="Status" name="status" value={status} onChange={(e) => setStatus(e.target.value as ClusterStatus | "")} hint="Any: every cluster that is not deleted.">
          <option value="">Any</option>
          {CLUSTER_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </SelectField>
      </form>
      {list.status === "loading" ? <Loading what="clusters" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the clusters." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-clusters">
          <h2 id="no-clusters">{status ? `No ${status} clusters` : "No dedicated clusters"}</h2>
          <p>Clusters that tenants order on a plan with the dedicated tier are listed here.</p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Clusters">
          <table>
            <caption className="visually-hidden">Clusters</caption>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Cluster</th>
                <th scope="col">Engine</th>
                <th scope="col">Size</th>
                <th scope="col">Replicas</th>
                <th scope="col">Status</th>
                <th scope="col">Last error</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <code>{c.tenant}</code>
                  </td>
                  <td className="row-name">{c.name}</td>
                  <td>{c.engine}</td>
                  <td>{c.size}</td>
                  <td>{c.replicas}</td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td>{c.last_error || "—"}</td>
                  <td>{formatDate(c.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} error={list.moreError} onClick={list.loadMore} />
    </>
  );
}

const PART_LABELS: Record<PartHealth["name"], string> = { database: "Database", broker: "Task broker", gateway: "Gateway", workers: "Workers", reconcile: "Cluster reconcile" };

/** The platform's parts, each probed by the API: ok or its error, and how long the probe took. */
export function OperatorHealthPage() {
  const load = useCallback(() => call(api.GET("/api/v1/operator/health")), []);
  const health = useAsync(load);
  return (
    <>
      <h1>Health</h1>
      {health.status === "loading" ? <Loading what="the platform's health" /> : null}
      {health.status === "error" ? <ErrorMessage error={health.error} title="Could not check the platform's health." /> : null}
      {health.status === "ready" ? (
        <>
          <p role="status" className={health.data.status === "ok" ? "" : "warning"}>
            {health.data.status === "ok" ? "Every part answers." : "Some parts do not answer."}
          </p>
          <ul className="health-parts" aria-label="Platform parts">
            {health.data.parts.map((part) => (
              <li key={part.name} className="card" aria-label={PART_LABELS[part.name]}>
                <h2>
                  {PART_LABELS[part.name]} <span className={`badge badge-${part.ok ? "ready" : "failed"}`}>{part.ok ? "ok" : "error"}</span>
                </h2>
                <dl className="facts">
                  <dt>{part.name === "workers" || part.name === "reconcile" ? "Seen" : "Probed"}</dt>
                  <dd>
                    <code>{part.target}</code>
                  </dd>
                  <dt>Latency</dt>
                  <dd>{part.latency_ms} ms</dd>
                  {part.ok ? null : (
                    <>
                      <dt>Error</dt>
                      <dd>{part.error}</dd>
                    </>
                  )}
                </dl>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <button type="button" onClick={health.reload} disabled={health.status === "loading"}>
        Check again
      </button>
    </>
  );
}
