import { lazy, Suspense, useCallback, useMemo } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import type { UsageSummary } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { Loading } from "../components/Loading";
import type { Series } from "../components/TimeChart";
import { formatNumber } from "../lib/format";
import { useAsync } from "../lib/useAsync";
import { useTenant } from "./TenantLayout";

const TimeChart = lazy(() => import("../components/TimeChart"));

const DAYS = 7;
const LARGEST = 10; // indexes listed by stored vectors

type Summary = UsageSummary;
type Hour = Summary["hours"][number];

export interface HourlyTotals {
  x: number[];
  requests: number[];
  readUnits: number[];
  writeUnits: number[];
  written: number[];
  deleted: number[];
  errors: number[];
  /** null: the hour was not sampled (a gap in the chart, not a zero). */
  stored: (number | null)[];
}

/** The summary's hours (newest first) as one series per measure, oldest hour first. */
export function hourlyTotals(hours: readonly Hour[]): HourlyTotals {
  const sorted = [...hours].sort((a, b) => a.hour.localeCompare(b.hour));
  const pick = (f: (h: Hour) => number) => sorted.map(f);
  return {
    x: sorted.map((h) => Math.floor(new Date(h.hour).getTime() / 1000)),
    requests: pick((h) => h.requests),
    readUnits: pick((h) => h.read_units),
    writeUnits: pick((h) => h.write_units),
    written: pick((h) => h.vectors_written),
    deleted: pick((h) => h.vectors_deleted),
    errors: pick((h) => h.error_requests),
    stored: sorted.map((h) => h.stored_vectors ?? null),
  };
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

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
    const [limits, summary, stored] = await Promise.all([
      call(api.GET("/api/v1/tenants/{tenant_slug}/limits", { params: { path } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/usage/summary", { params: { path, query: { since } } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/usage/stored-vectors", { params: { path, query: { largest: LARGEST } } })),
    ]);
    return { limits, summary, largest: stored.data, storedTotal: stored.total };
  }, [slug]);
  const state = useAsync(load);
  const totals = useMemo(() => (state.data ? hourlyTotals(state.data.summary.hours) : null), [state.data]);
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
  const refused: Series[] = useMemo(() => (totals ? [{ label: "Refused requests", values: totals.errors, color: "#b91c1c" }] : []), [totals]);
  const storedSeries: Series[] = useMemo(() => (totals ? [{ label: "Stored vectors", values: totals.stored, color: "#0f766e" }] : []), [totals]);

  if (state.status === "loading") return <Loading what="the overview" />;
  if (state.status === "error") return <ErrorMessage error={state.error} title="Could not load the overview." />;
  const { limits, summary, largest, storedTotal } = state.data;
  const l = limits.limits;
  const peakQps = totals && totals.requests.length ? Math.max(...totals.requests) / 3600 : 0;
  const sampled = totals ? totals.stored.some((v) => v !== null) : false;

  return (
    <>
      <h1>{tenant.name}</h1>
      <section className="card" aria-labelledby="plan-heading">
        <h2 id="plan-heading">
          Plan: <span className="plan">{limits.plan}</span>
        </h2>
        {limits.overridden.length ? <p className="hint">Overridden for this tenant: {limits.overridden.join(", ")}.</p> : null}
        <div className="meters">
          <Meter label="Indexes" used={summary.indexes} limit={l.max_indexes} />
          <Meter label="Stored vectors" used={storedTotal} limit={l.max_vectors} />
          {l.max_clusters > 0 ? (
            <Meter label="Dedicated clusters" used={summary.clusters} limit={l.max_clusters} />
          ) : (
            <p className="hint">Dedicated clusters: not in this plan.</p>
          )}
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
          {l.max_clusters > 0 ? (
            <div>
              <dt>Cluster sizes / replicas</dt>
              <dd>
                {l.allowed_cluster_sizes.join(", ")} / up to {l.max_cluster_replicas}
              </dd>
            </div>
          ) : null}
        </dl>
      </section>

      <section className="card" aria-labelledby="traffic-heading">
        <h2 id="traffic-heading">Requests and units, last {DAYS} days</h2>
        {!totals || sum(totals.requests) + sum(totals.errors) === 0 ? (
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
              This week: {formatNumber(sum(totals.requests))} requests, {formatNumber(sum(totals.readUnits))} read units, {formatNumber(sum(totals.writeUnits))} write units.
            </p>
          </>
        )}
      </section>

      <section className="card" aria-labelledby="errors-heading">
        <h2 id="errors-heading">Errors by code, last {DAYS} days</h2>
        {summary.errors_by_code.length === 0 || !totals ? (
          <p className="empty">No refused requests this week. Requests the gateway refuses with an authenticated key are counted here by their error code.</p>
        ) : (
          <>
            <Suspense fallback={<Loading what="the chart" />}>
              <TimeChart title="Refused requests per hour" x={totals.x} series={refused} />
            </Suspense>
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Errors by code">
              <table>
                <caption className="visually-hidden">Refused requests by error code</caption>
                <thead>
                  <tr>
                    <th scope="col">Code</th>
                    <th scope="col">Status</th>
                    <th scope="col">Requests</th>
                  </tr>
                </thead>
                <tbody>
                  {summary.errors_by_code.map((e) => (
                    <tr key={`${e.code}-${e.status}`}>
                      <td>
                        <code>{e.code}</code>
                      </td>
                      <td>{e.status}</td>
                      <td>{formatNumber(e.requests)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <p className="hint">Each code is stable and explained in the platform's docs/ERRORS.md; the message of a refused request says what to change.</p>
          </>
        )}
      </section>

      <section className="card" aria-labelledby="stored-heading">
        <h2 id="stored-heading">Stored vectors</h2>
        {sampled && totals ? (
          <Suspense fallback={<Loading what="the chart" />}>
            <TimeChart title="Stored vectors (hourly sample)" x={totals.x} series={storedSeries} />
          </Suspense>
        ) : null}
        {largest.length === 0 ? (
          <p className="empty">
            No vectors stored. <Link to={`/t/${slug}/indexes`}>Create an index</Link>, then upsert vectors into it through the gateway.
          </p>
        ) : (
          <>
            <p className="hint">
              {formatNumber(storedTotal)} vectors in {formatNumber(summary.indexes)} {summary.indexes === 1 ? "index" : "indexes"}
              {summary.indexes > LARGEST ? `; the ${LARGEST} largest below, every index on the ` : ""}
              {summary.indexes > LARGEST ? <Link to={`/t/${slug}/indexes`}>Indexes page</Link> : null}.
            </p>
            <div className="table-wrap" tabIndex={0} role="region" aria-label="Stored vectors per index">
              <table>
                <caption className="visually-hidden">Stored vectors per index, largest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Index</th>
                    <th scope="col">Vectors now</th>
                  </tr>
                </thead>
                <tbody>
                  {largest.map((s) => (
                    <tr key={s.index}>
                      <td className="row-name">
                        <Link to={`/t/${slug}/indexes/${s.index}`}>{s.index}</Link>
                      </td>
                      <td>{formatNumber(s.vectors)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>
    </>
  );
}
