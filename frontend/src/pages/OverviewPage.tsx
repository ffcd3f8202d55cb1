import { lazy, Suspense, useCallback, useMemo } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { UsageRow } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { Loading } from "../components/Loading";
import type { Series } from "../components/TimeChart";
import { formatNumber } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useTenant } from "./TenantLayout";

const TimeChart = lazy(() => import("../components/TimeChart"));

const DAYS = 7;
const MAX_USAGE_PAGES = 20; // 2,000 hourly rows: a week of ~12 busy indexes

async function loadUsage(slug: string, since: string): Promise<UsageRow[]> {
  const rows: UsageRow[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_USAGE_PAGES; page++) {
    const answer = await call(api.GET("/api/v1/tenants/{tenant_slug}/usage", { params: { path: { tenant_slug: slug }, query: { since, limit: 100, ...(cursor ? { cursor } : {}) } } }));
    rows.push(...answer.data);
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return rows;
}

export interface HourlyTotals {
  x: number[];
  requests: number[];
  readUnits: number[];
  writeUnits: number[];
  written: number[];
  deleted: number[];
}

/** Sums the per-index hourly rows into one series per measure, oldest hour first. */
export function hourlyTotals(rows: readonly UsageRow[]): HourlyTotals {
  const byHour = new Map<number, UsageRow[]>();
  for (const row of rows) {
    const t = Math.floor(new Date(row.hour).getTime() / 1000);
    byHour.set(t, [...(byHour.get(t) ?? []), row]);
  }
  const x = [...byHour.keys()].sort((a, b) => a - b);
  const sum = (pick: (r: UsageRow) => number) => x.map((t) => (byHour.get(t) ?? []).reduce((acc, r) => acc + pick(r), 0));
  return {
    x,
    requests: sum((r) => r.requests),
    readUnits: sum((r) => r.read_units),
    writeUnits: sum((r) => r.write_units),
    written: sum((r) => r.vectors_written),
    deleted: sum((r) => r.vectors_deleted),
  };
}

function Meter({ label, used, limit }: { label: string; used: number | undefined; limit: number }) {
  const ratio = used === undefined || limit <= 0 ? 0 : Math.min(used / limit, 1);
  return (
    <div className="meter">
      <div className="meter-label">
        <span>{label}</span>
        <span>
          {used === undefined ? "—" : formatNumber(used)} of {formatNumber(limit)}
        </span>
      </div>
      <meter min={0} max={limit || 1} value={used ?? 0} aria-label={`${label}: ${used ?? 0} of ${limit}`} high={limit * 0.8} optimum={0}>
        {Math.round(ratio * 100)}%
      </meter>
    </div>
  );
}

export function OverviewPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const load = useCallback(async () => {
    const path = { tenant_slug: slug };
    const since = new Date(Date.now() - DAYS * 86400_000).toISOString();
    const [limits, indexes, stored, usage] = await Promise.all([
      call(api.GET("/api/v1/tenants/{tenant_slug}/limits", { params: { path } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/indexes", { params: { path, query: { limit: 100 } } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/usage/stored-vectors", { params: { path } })),
      loadUsage(slug, since),
    ]);
    return { limits, indexes, stored: stored.data, usage };
  }, [slug]);
  const state = useAsync(load);
  const totals = useMemo(() => (state.data ? hourlyTotals(state.data.usage) : null), [state.data]);
  const traffic: Series[] = useMemo(
    () =>
      totals
        ? [
            { label: "Requests", values: totals.requests, color: "#2563eb" },
            { label: "Read units", values: totals.readUnits, color: "#16a34a" },
            { label: "Write units", values: totals.writeUnits, color: "#dc2626" },
          ]
        : [],
    [totals],
  );
  const churn: Series[] = useMemo(
    () =>
      totals
        ? [
            { label: "Vectors written", values: totals.written, color: "#7c3aed" },
            { label: "Vectors deleted", values: totals.deleted, color: "#ea580c" },
          ]
        : [],
    [totals],
  );

  if (state.status === "loading") return <Loading what="the overview" />;
  if (state.status === "error") return <ErrorMessage error={state.error} title="Could not load the overview." />;
  const { limits, indexes, stored, usage } = state.data;
  const l = limits.limits;
  const indexCount = indexes.data.length;
  const storedTotal = stored.reduce((acc, s) => acc + s.vectors, 0);
  const peakQps = totals && totals.requests.length ? Math.max(...totals.requests) / 3600 : 0;

  return (
    <>
      <h1>{tenant.name}</h1>
      <section className="card" aria-labelledby="plan-heading">
        <h2 id="plan-heading">
          Plan: <span className="plan">{limits.plan}</span>
        </h2>
        {limits.overridden.length ? <p className="hint">Overridden for this tenant: {limits.overridden.join(", ")}.</p> : null}
        <div className="meters">
          <Meter label="Indexes" used={indexes.next_cursor ? undefined : indexCount} limit={l.max_indexes} />
          <Meter label="Stored vectors" used={storedTotal} limit={l.max_vectors} />
        </div>
        <dl className="limits">
          <div>
            <dt>Queries per second</dt>
            <dd>
              at most {formatNumber(l.max_qps)} (busiest hour of the week: {peakQps.toFixed(2)} req/s on average)
            </dd>
          </div>
          <div>
            <dt>Dimensions</dt>
            <dd>up to {formatNumber(l.max_dimension)}</dd>
          </div>
          <div>
            <dt>Upsert batch</dt>
            <dd>{formatNumber(l.max_upsert_batch)} vectors</dd>
          </div>
          <div>
            <dt>Metadata per record</dt>
            <dd>{formatNumber(l.max_metadata_bytes)} bytes</dd>
          </div>
          <div>
            <dt>Tiers / engines</dt>
            <dd>
              {l.allowed_tiers.join(", ")} / {l.allowed_engines.join(", ")}
            </dd>
          </div>
        </dl>
      </section>

      <section className="card" aria-labelledby="traffic-heading">
        <h2 id="traffic-heading">Requests and units, last {DAYS} days</h2>
        {usage.length === 0 || !totals ? (
          <p className="empty">
            No traffic yet. Requests appear here a few seconds after the gateway answers them — <Link to={`/t/${slug}/keys`}>mint a key</Link> and upsert into an{" "}
            <Link to={`/t/${slug}/indexes`}>index</Link>.
          </p>
        ) : (
          <>
            <Suspense fallback={<Loading what="the chart" />}>
              <TimeChart title="Requests, read and write units per hour" x={totals.x} series={traffic} />
              <TimeChart title="Vectors written and deleted per hour" x={totals.x} series={churn} />
            </Suspense>
            <p className="hint">
              This week: {formatNumber(totals.requests.reduce((a, b) => a + b, 0))} requests, {formatNumber(totals.readUnits.reduce((a, b) => a + b, 0))} read units,{" "}
              {formatNumber(totals.writeUnits.reduce((a, b) => a + b, 0))} write units.
            </p>
          </>
        )}
      </section>

      <section className="card" aria-labelledby="stored-heading">
        <h2 id="stored-heading">Stored vectors</h2>
        {stored.length === 0 ? (
          <p className="empty">
            No vectors stored. <Link to={`/t/${slug}/indexes`}>Create an index</Link>, then upsert vectors into it through the gateway.
          </p>
        ) : (
          <div className="table-wrap" tabIndex={0} role="region" aria-label="Stored vectors per index">
            <table>
              <caption className="visually-hidden">Stored vectors per index</caption>
              <thead>
                <tr>
                  <th scope="col">Index</th>
                  <th scope="col">Vectors now</th>
                </tr>
              </thead>
              <tbody>
                {stored.map((s) => (
                  <tr key={s.index}>
                    <td className="row-name">{s.index}</td>
                    <td>{formatNumber(s.vectors)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
