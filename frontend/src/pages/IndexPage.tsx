// The index page (lazy-loaded): the index's facts and the query playground,
// which mints a short-lived read key through the management API and then calls
// the gateway directly at the index's host with plain fetch.

import { lazy, Suspense, useCallback, useId, useMemo, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import { ApiError, toApiError } from "../api/errors";
import type { Index } from "../api/types";
import { copyText } from "../components/CopyField";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextAreaField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { FilterEditor } from "../components/FilterEditor";
import { formatNumber } from "../lib/format";
import { buildQuery, curlSnippet, DEFAULT_FORM, FILTER_EXAMPLES, pythonSnippet, type FormErrors, type JsonValue, type QueryBody, type QueryForm } from "../lib/playground";
import { PlaygroundKeys, withKey, type PlaygroundKey } from "../lib/playgroundKey";
import { asApiError, useAsync } from "../lib/useAsync";
import { IndexSettings } from "./IndexSettings";
import { useTenant } from "./TenantLayout";

const TimeChart = lazy(() => import("../components/TimeChart"));

/** The index's latency per hour over the last day, as the gateway measured it. */
function Latency({ slug, name }: { slug: string; name: string }) {
  const load = useCallback(
    () => call(api.GET("/api/v1/tenants/{tenant_slug}/indexes/{index_name}/latency", { params: { path: { tenant_slug: slug, index_name: name } } })),
    [slug, name],
  );
  const state = useAsync(load);
  return (
    <section className="card" aria-labelledby="latency-heading">
      <h2 id="latency-heading">Latency, last 24 hours</h2>
      {state.status === "loading" ? <Loading what="the latency" /> : null}
      {state.status === "error" ? <ErrorMessage error={state.error} title="Could not load the latency." /> : null}
      {state.status === "ready" && state.data.hours.length === 0 ? (
        <p className="empty">No requests answered yet. Run a query below; the gateway reports latency with its usage every few seconds.</p>
      ) : null}
      {state.status === "ready" && state.data.hours.length > 0
        ? (() => {
            const hours = [...state.data.hours].reverse();
            const x = hours.map((h) => Date.parse(h.hour) / 1000);
            const ms = (v: number | null | undefined) => v ?? 0;
            const last = state.data.hours[0];
            if (last === undefined) return null;
            return (
              <>
                <Suspense fallback={<Loading what="the chart" />}>
                  <TimeChart
                    title="p50 / p95 / p99 per hour (ms)"
                    x={x}
                    series={[
                      { label: "p50", values: hours.map((h) => ms(h.p50_ms)), color: "#2563eb" },
                      { label: "p95", values: hours.map((h) => ms(h.p95_ms)), color: "#d97706" },
                      { label: "p99", values: hours.map((h) => ms(h.p99_ms)), color: "#dc2626" },
                    ]}
                  />
                </Suspense>
                <p className="hint">
                  Last hour with traffic: {formatNumber(last.requests)} requests, p50 ≤ {ms(last.p50_ms)} ms, p95 ≤ {ms(last.p95_ms)} ms, p99 ≤{" "}
                  {ms(last.p99_ms)} ms (upper bounds of the histogram's buckets).
                </p>
              </>
            );
          })()
        : null}
    </section>
  );
}

interface Match {
  id: string;
  score?: number;
  values?: number[];
  metadata?: Record<string, JsonValue>;
}

interface QueryOutcome {
  matches: Match[];
  ms: number;
  includeValues: boolean;
}

function gatewayUnreachable(cause: unknown): ApiError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ApiError(0, "network_error", `The gateway could not be reached (${why}). Is it running, and does it allow this console's origin (VECTORPLANE_GATEWAY_CORS_ORIGINS)?`);
}

/** POST {host}/query with the key; answers the response and how long the call took. */
async function sendQuery(key: PlaygroundKey, body: QueryBody, timing: { ms: number }): Promise<Response> {
  const started = performance.now();
  try {
    return await globalThis.fetch(`${key.host}/query`, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Api-Key": key.key, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } finally {
    timing.ms = performance.now() - started;
  }
}

function Snippet({ title, text }: { title: string; text: string }) {
  const id = useId();
  const [copied, setCopied] = useState<"" | "yes" | "no">("");
  return (
    <div className="snippet">
      <div className="snippet-head">
        <h3 id={id}>{title}</h3>
        <button type="button" aria-label={`Copy the ${title} snippet`} onClick={async () => setCopied((await copyText(text)) ? "yes" : "no")}>
          Copy
        </button>
      </div>
      <pre aria-labelledby={id} tabIndex={0}>
        <code>{text}</code>
      </pre>
      <p role="status" aria-live="polite" className="hint">
        {copied === "yes" ? "Copied to the clipboard." : copied === "no" ? "The browser refused the clipboard: select the text and copy it by hand." : ""}
      </p>
    </div>
  );
}

function formatScore(score: number | undefined): string {
  return score === undefined ? "—" : String(Number(score.toPrecision(6)));
}

function Results({ outcome }: { outcome: QueryOutcome }) {
  const { matches, ms, includeValues } = outcome;
  return (
    <section aria-labelledby="results-heading">
      <h3 id="results-heading" className="visually-hidden">
        Query results
      </h3>
      <p role="status" aria-live="polite">
        {matches.length} matches in {ms.toFixed(1)} ms
      </p>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Query results">
        <table>
          <caption>Results</caption>
          <thead>
            <tr>
              <th scope="col">ID</th>
              <th scope="col">Score</th>
              <th scope="col">Metadata</th>
              {includeValues ? <th scope="col">Values</th> : null}
            </tr>
          </thead>
          <tbody>
            {matches.map((m) => (
              <tr key={m.id}>
                <td className="row-name">{m.id}</td>
                <td>{formatScore(m.score)}</td>
                <td className="metadata-cell">{m.metadata ? <code>{JSON.stringify(m.metadata)}</code> : "—"}</td>
                {includeValues ? <td className="metadata-cell">{m.values ? <code>{JSON.stringify(m.values)}</code> : "—"}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** The page's short-lived gateway keys (in memory only, for the life of this page; never localStorage), shared by the playground and the namespace stats. */
function usePlaygroundKeys(slug: string, name: string): PlaygroundKeys {
  return useMemo(
    () =>
      new PlaygroundKeys(() =>
        call(
          api.POST("/api/v1/tenants/{tenant_slug}/indexes/{index_name}/playground-key", {
            params: { path: { tenant_slug: slug, index_name: name } },
          }),
        ),
      ),
    [slug, name],
  );
}

interface NamespaceCount {
  name: string;
  vectors: number;
}

/** Pinecone's describe_index_stats answer as rows, the default namespace ("") first, then by name. */
export function namespaceRows(answer: unknown): NamespaceCount[] {
  const namespaces = (answer as { namespaces?: Record<string, { vectorCount?: number }> } | undefined)?.namespaces ?? {};
  return Object.entries(namespaces)
    .map(([name, n]) => ({ name, vectors: n.vectorCount ?? 0 }))
    .sort((a, b) => (a.name === "" ? -1 : b.name === "" ? 1 : a.name.localeCompare(b.name)));
}

/** Vectors per namespace, asked of the gateway (describe_index_stats) with the page's key, when the user asks: no key is minted just by opening the page. */
function NamespaceStats({ keys }: { keys: PlaygroundKeys }) {
  const [rows, setRows] = useState<NamespaceCount[] | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function load() {
    setBusy(true);
    setError(undefined);
    try {
      const { response } = await withKey(keys, (key) =>
        globalThis.fetch(`${key.host}/describe_index_stats`, {
          method: "POST",
          mode: "cors",
          credentials: "omit",
          headers: { "Api-Key": key.key, "Content-Type": "application/json", Accept: "application/json" },
          body: "{}",
        }),
      );
      let parsed: unknown;
      try {
        parsed = await response.json();
      } catch {
        parsed = undefined;
      }
      if (!response.ok) {
        setError(toApiError(response.status, parsed));
        return;
      }
      setRows(namespaceRows(parsed));
    } catch (cause) {
      setError(cause instanceof ApiError ? cause : gatewayUnreachable(cause));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="namespaces-heading">
      <h2 id="namespaces-heading">Namespaces</h2>
      <p className="hint">Counted by the gateway (describe_index_stats) with the page&apos;s short-lived read key, as a client sees them.</p>
      <ErrorMessage error={error} title="Could not count the namespaces." />
      {rows === undefined ? null : rows.length === 0 ? (
        <p className="empty">No vectors in any namespace yet.</p>
      ) : (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Vectors per namespace">
          <table>
            <caption className="visually-hidden">Vectors per namespace</caption>
            <thead>
              <tr>
                <th scope="col">Namespace</th>
                <th scope="col">Vectors</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.name}>
                  <td className="row-name">{r.name === "" ? <em>(default)</em> : r.name}</td>
                  <td>{formatNumber(r.vectors)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <button type="button" onClick={load} disabled={busy}>
        {rows === undefined ? "Count vectors per namespace" : "Count again"}
      </button>
    </section>
  );
}

function Playground({ slug, index, keys }: { slug: string; index: Index; keys: PlaygroundKeys }) {
  const [form, setForm] = useState<QueryForm>(DEFAULT_FORM);
  const [errors, setErrors] = useState<FormErrors>({});
  const [keyError, setKeyError] = useState<ApiError | undefined>();
  const [queryError, setQueryError] = useState<ApiError | undefined>();
  const [outcome, setOutcome] = useState<QueryOutcome | undefined>();
  const [busy, setBusy] = useState(false);
  // A key of the user's own to query with instead (in memory only): to see what that key sees
  // (its restrictions, its row filter), and its refusal once it is revoked or expired.
  const [ownKey, setOwnKey] = useState("");

  const set = <K extends keyof QueryForm>(name: K, value: QueryForm[K]) => setForm((f) => ({ ...f, [name]: value }));
  const built = useMemo(() => buildQuery(form, index.dimension), [form, index.dimension]);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setKeyError(undefined);
    setQueryError(undefined);
    const { body, errors: problems } = buildQuery(form, index.dimension);
    setErrors(problems ?? {});
    if (!body) return;
    setBusy(true);
    const timing = { ms: 0 };
    try {
      let answer: Response;
      try {
        const own = ownKey.trim();
        answer = own
          ? await sendQuery({ key: own, key_id: "", expires_at: "", index: index.name, host: index.host }, body, timing)
          : (await withKey(keys, (key) => sendQuery(key, body, timing))).response;
      } catch (cause) {
        if (cause instanceof ApiError) {
          setKeyError(cause); // minting the key failed (e.g. 409 index_not_ready)
          return;
        }
        setQueryError(gatewayUnreachable(cause));
        return;
      }
      let parsed: unknown;
      try {
        parsed = await answer.json();
      } catch {
        parsed = undefined;
      }
      if (!answer.ok) {
        setQueryError(toApiError(answer.status, parsed));
        setOutcome(undefined);
        return;
      }
      const matches = (parsed as { matches?: Match[] } | undefined)?.matches ?? [];
      setOutcome({ matches, ms: timing.ms, includeValues: body.includeValues });
    } catch (cause) {
      setQueryError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const origin = window.location.origin;
  return (
    <>
      <section className="card playground" aria-labelledby="playground-heading">
        <h2 id="playground-heading">Query playground</h2>
        <p className="hint">
          Queries go to the gateway at <code>{index.host}</code> with a read key for this index that the console mints for you (it expires in minutes and is listed with
          the tenant&apos;s keys as <code>console:{index.name}</code>).
        </p>
        <form onSubmit={submit} noValidate>
          <ErrorMessage error={keyError} title="Could not get a playground key." />
          <TextField
            label="Your API key (optional)"
            name="own-key"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={ownKey}
            onChange={(e) => setOwnKey(e.target.value)}
            hint="Empty: the console's short-lived read key. Paste a key to query as that key (its restrictions apply); it stays in this page's memory only."
          />
          <SelectField label="Query by" name="by" value={form.by} onChange={(e) => set("by", e.target.value === "id" ? "id" : "vector")}>
            <option value="vector">Vector</option>
            <option value="id">ID</option>
          </SelectField>
          {form.by === "vector" ? (
            <TextAreaField
              label="Vector"
              name="vector"
              rows={3}
              spellCheck={false}
              value={form.vector}
              onChange={(e) => set("vector", e.target.value)}
              error={errors.vector}
              hint={`A JSON array of ${formatNumber(index.dimension)} numbers.`}
            />
          ) : (
            <TextField label="ID" name="id" autoComplete="off" value={form.id} onChange={(e) => set("id", e.target.value)} error={errors.id} hint="Finds the vectors nearest to this stored one." />
          )}
          <TextField label="Top K" name="topK" inputMode="numeric" value={form.topK} onChange={(e) => set("topK", e.target.value)} error={errors.topK} hint="1 to 10,000." />
          <TextField label="Namespace" name="namespace" autoComplete="off" value={form.namespace} onChange={(e) => set("namespace", e.target.value)} hint="Optional; empty is the default namespace." />
          <FilterEditor label="Filter" name="filter" value={form.filter} onChange={(text) => set("filter", text)} error={errors.filter} examples={FILTER_EXAMPLES} />
          <div className="field">
            <label className="checkbox">
              <input type="checkbox" checked={form.includeValues} onChange={(e) => set("includeValues", e.target.checked)} /> Include values
            </label>
            <label className="checkbox">
              <input type="checkbox" checked={form.includeMetadata} onChange={(e) => set("includeMetadata", e.target.checked)} /> Include metadata
            </label>
          </div>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Running…" : "Run query"}
          </button>
        </form>
        <ErrorMessage error={queryError} title="The gateway refused the query." />
        {outcome && !queryError ? <Results outcome={outcome} /> : null}
      </section>

      <section className="card" aria-labelledby="snippets-heading">
        <h2 id="snippets-heading">Copy as</h2>
        {built.body ? (
          <>
            <p className="hint">
              The same query outside the console. Set <code>VECTORPLANE_KEY</code> to an API key with the <code>read</code> scope (<Link to={`/t/${slug}/keys`}>mint one</Link>).
            </p>
            <Snippet title="curl" text={curlSnippet(index.host, built.body)} />
            <Snippet title="Python (pinecone client)" text={pythonSnippet(origin, index.name, built.body)} />
          </>
        ) : (
          <p className="hint">Fill in the form (a valid vector or ID, Top K and filter) to see the query as curl and Python.</p>
        )}
      </section>
    </>
  );
}

export default function IndexPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const { name = "" } = useParams();
  const load = useCallback(async () => {
    const path = { tenant_slug: slug };
    const [index, stored] = await Promise.all([
      call(api.GET("/api/v1/tenants/{tenant_slug}/indexes/{index_name}", { params: { path: { ...path, index_name: name } } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/usage/stored-vectors", { params: { path, query: { index: [name] } } })).catch((cause: unknown) => asApiError(cause)),
    ]);
    return { index, stored };
  }, [slug, name]);
  const state = useAsync(load);
  const keys = usePlaygroundKeys(slug, name);

  if (state.status === "loading") return <Loading what={`index ${name}`} />;
  if (state.status === "error") {
    if (state.error.status === 404 || state.error.status === 400) {
      return (
        <section className="not-found">
          <h1>Page not found</h1>
          <p>
            There is no index {name} here, or you do not have access to it. <Link to={`/t/${slug}/indexes`}>Back to the indexes</Link>
          </p>
        </section>
      );
    }
    return <ErrorMessage error={state.error} title="Could not load the index." />;
  }
  const { index, stored } = state.data;
  const vectors = stored instanceof ApiError ? undefined : (stored.data.find((s) => s.index === index.name)?.vectors ?? 0);
  return (
    <>
      <p className="hint">
        <Link to={`/t/${slug}/indexes`}>Indexes</Link> / {index.name}
      </p>
      <h1>{index.name}</h1>
      <section className="card" aria-labelledby="index-facts-heading">
        <h2 id="index-facts-heading" className="visually-hidden">
          About this index
        </h2>
        <dl className="index-facts">
          <div>
            <dt>Dimension</dt>
            <dd>{formatNumber(index.dimension)}</dd>
          </div>
          <div>
            <dt>Metric</dt>
            <dd>{index.metric}</dd>
          </div>
          <div>
            <dt>Tier / engine</dt>
            <dd>
              {index.tier} / {index.engine}
              {index.cluster ? ` (${index.cluster})` : ""}
            </dd>
          </div>
          <div>
            <dt>Status</dt>
            <dd>
              <span className={`badge badge-${index.status}`}>{index.status}</span>
            </dd>
          </div>
          <div>
            <dt>Vectors</dt>
            <dd>{vectors === undefined ? "—" : formatNumber(vectors)}</dd>
          </div>
          <div>
            <dt>Host</dt>
            <dd>
              <code>{index.host}</code>
            </dd>
          </div>
        </dl>
        {stored instanceof ApiError ? <ErrorMessage error={stored} title="Could not count the stored vectors." /> : null}
      </section>
      <IndexSettings key={`settings-${slug}/${index.name}`} slug={slug} index={index} canEdit={tenant.role !== "viewer"} onSaved={() => state.reload()} />
      <NamespaceStats key={`ns-${slug}/${index.name}`} keys={keys} />
      <Playground key={`${slug}/${index.name}`} slug={slug} index={index} keys={keys} />
      <Latency slug={slug} name={index.name} />
    </>
  );
}
