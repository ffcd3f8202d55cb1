import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Cluster, Index, Limits, Metric } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatNumber } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

const METRICS: readonly Metric[] = ["cosine", "euclidean", "dotproduct"];
export const INDEX_NAME = /^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$/;

/** The rules the API enforces on create, checked before sending (the API checks them again). */
export function validateIndex(name: string, dimension: string, tuning: Partial<Record<TuningField, string>> = {}): FieldErrors {
  const errors: FieldErrors = {};
  if (!INDEX_NAME.test(name)) errors.name = "1–45 lowercase letters, digits and inner hyphens.";
  if (!/^\d+$/.test(dimension) || Number(dimension) < 1 || Number(dimension) > 65536) errors.dimension = "A whole number from 1 to 65,536 (your plan may allow fewer).";
  for (const field of Object.keys(TUNING) as TuningField[]) {
    const value = tuning[field];
    if (value === undefined) continue;
    const [min, max] = TUNING[field].range;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) errors[field] = `A whole number from ${min} to ${formatNumber(max)}.`;
  }
  return errors;
}

/** The HNSW parameters the API accepts on create, with its defaults and ranges. */
export const TUNING = {
  hnsw_m: { label: "HNSW m", range: [2, 100], initial: "16", hint: "Links per node: more is better recall, more memory." },
  hnsw_ef_construction: { label: "HNSW ef_construction", range: [4, 1000], initial: "64", hint: "Build-time candidate list: more is better recall, slower builds." },
  ef_search: { label: "ef_search", range: [1, 1000], initial: "100", hint: "Query-time candidate list (changeable later): more is better recall, slower queries." },
} as const;
export type TuningField = keyof typeof TUNING;
const TUNING_FIELDS = Object.keys(TUNING) as TuningField[];

/** Where an index lives: the shared tier, or one of the tenant's ready dedicated clusters. */
const SHARED = "";

function CreateIndexForm({ slug, limits, clusters, onCreated }: { slug: string; limits: Limits["limits"] | undefined; clusters: readonly Cluster[]; onCreated: (index: Index) => void }) {
  const [name, setName] = useState("");
  const [dimension, setDimension] = useState("");
  const [metric, setMetric] = useState<Metric>("cosine");
  const [placement, setPlacement] = useState(SHARED);
  const [tuning, setTuning] = useState<Record<TuningField, string>>({ hnsw_m: TUNING.hnsw_m.initial, hnsw_ef_construction: TUNING.hnsw_ef_construction.initial, ef_search: TUNING.ef_search.initial });
  const [protectedIndex, setProtectedIndex] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [local, setLocal] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const dedicatedAllowed = limits?.allowed_tiers.includes("dedicated") ?? false;
  const ready = clusters.filter((c) => c.status === "ready" && (limits?.allowed_engines.includes(c.engine) ?? true));
  const cluster = ready.find((c) => c.name === placement);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const problems = validateIndex(name, dimension, tuning);
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const where = cluster ? { tier: "dedicated" as const, engine: cluster.engine, cluster: cluster.name } : { tier: "shared" as const, engine: "pgvector" as const };
      const index = await call(
        api.POST("/api/v1/tenants/{tenant_slug}/indexes", {
          params: { path: { tenant_slug: slug } },
          body: {
            name,
            dimension: Number(dimension),
            metric,
            ...where,
            hnsw_m: Number(tuning.hnsw_m),
            hnsw_ef_construction: Number(tuning.hnsw_ef_construction),
            ef_search: Number(tuning.ef_search),
            deletion_protection: protectedIndex,
          },
        }),
      );
      setName("");
      setDimension("");
      onCreated(index);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["name", "dimension", "metric", "tier", "engine", "cluster", ...TUNING_FIELDS]) };
  const placementError = fields.cluster ?? fields.tier ?? fields.engine;
  return (
    <form onSubmit={submit} noValidate className="card inline-form" aria-labelledby="create-index-heading">
      <h2 id="create-index-heading">Create an index</h2>
      <ErrorMessage error={error} />
      <TextField label="Name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={fields.name} hint="Lowercase letters, digits and hyphens." autoComplete="off" />
      <TextField label="Dimension" name="dimension" inputMode="numeric" value={dimension} onChange={(e) => setDimension(e.target.value)} error={fields.dimension} hint="The length of your embeddings, e.g. 1536." />
      <SelectField label="Metric" name="metric" value={metric} onChange={(e) => setMetric(e.target.value as Metric)} error={fields.metric}>
        {METRICS.map((m) => (
          <option key={m} value={m}>
            {m}
          </option>
        ))}
      </SelectField>
      <SelectField
        label="Where"
        name="placement"
        value={placement}
        onChange={(e) => setPlacement(e.target.value)}
        error={placementError}
        hint={
          !dedicatedAllowed
            ? "Your plan has the shared tier only."
            : ready.length === 0
              ? "No dedicated cluster is ready yet: create one on the Clusters page to place indexes on it."
              : "A dedicated cluster's engine is the index's engine."
        }
      >
        <option value={SHARED}>Shared tier (pgvector)</option>
        {dedicatedAllowed
          ? ready.map((c) => (
              <option key={c.name} value={c.name}>
                Cluster {c.name} ({c.engine}, {c.size})
              </option>
            ))
          : null}
      </SelectField>
      <details className="advanced">
        <summary>Index tuning and protection</summary>
        {TUNING_FIELDS.map((field) => (
          <TextField
            key={field}
            label={TUNING[field].label}
            name={field}
            inputMode="numeric"
            value={tuning[field]}
            onChange={(e) => setTuning({ ...tuning, [field]: e.target.value })}
            error={fields[field]}
            hint={`${TUNING[field].hint} ${TUNING[field].range[0]}–${formatNumber(TUNING[field].range[1])}, default ${TUNING[field].initial}.`}
          />
        ))}
        <div className="field checkbox">
          <label>
            <input type="checkbox" checked={protectedIndex} onChange={(e) => setProtectedIndex(e.target.checked)} /> Deletion protection
          </label>
          <span className="hint">A protected index cannot be deleted until the protection is turned off on its page.</span>
        </div>
      </details>
      <button type="submit" className="primary" disabled={busy}>
        Create index
      </button>
    </form>
  );
}

function DeleteIndex({ slug, index, onDeleted, onCancel }: { slug: string; index: Index; onDeleted: () => void; onCancel: () => void }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (typed !== index.name) return;
    setBusy(true);
    setError(undefined);
    try {
      await call(api.DELETE("/api/v1/tenants/{tenant_slug}/indexes/{index_name}", { params: { path: { tenant_slug: slug, index_name: index.name } } }));
      onDeleted();
    } catch (cause) {
      setError(asApiError(cause));
      setBusy(false);
    }
  }

  return (
    <form
      role="dialog"
      aria-labelledby="delete-index-heading"
      className="card danger-zone"
      onSubmit={submit}
      onKeyDown={(e) => {
        if (e.key === "Escape") onCancel();
      }}
    >
      <h2 id="delete-index-heading">Delete index {index.name}?</h2>
      <p>This deletes the index and all its vectors. It cannot be undone.</p>
      <ErrorMessage error={error} />
      <div className="field">
        <label htmlFor="confirm-index-name">
          Type <strong>{index.name}</strong> to confirm
        </label>
        <input id="confirm-index-name" ref={input} autoComplete="off" value={typed} onChange={(e) => setTyped(e.target.value)} />
      </div>
      <div className="actions">
        <button type="submit" className="danger" disabled={busy || typed !== index.name}>
          Delete index
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function IndexesPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/indexes", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  // Counts for the listed rows only (the API answers at most 100 names at a time).
  const listed = list.items.map((i) => i.name).join(",");
  const loadCounts = useCallback(async () => {
    const names = listed ? listed.split(",") : [];
    const chunks: string[][] = [];
    for (let i = 0; i < names.length; i += 100) chunks.push(names.slice(i, i + 100));
    const answers = await Promise.all(chunks.map((index) => call(api.GET("/api/v1/tenants/{tenant_slug}/usage/stored-vectors", { params: { path: { tenant_slug: slug }, query: { index } } }))));
    return { data: answers.flatMap((a) => a.data) };
  }, [slug, listed]);
  const counts = useAsync(loadCounts);
  const loadPlacement = useCallback(async () => {
    const path = { tenant_slug: slug };
    const limits = await call(api.GET("/api/v1/tenants/{tenant_slug}/limits", { params: { path } }));
    // Clusters are listed only when the plan has them (a viewer may read them; nothing to list otherwise).
    const clusters = limits.limits.allowed_tiers.includes("dedicated") ? (await call(api.GET("/api/v1/tenants/{tenant_slug}/clusters", { params: { path, query: { limit: 100 } } }))).data : [];
    return { limits: limits.limits, clusters };
  }, [slug]);
  const placement = useAsync(loadPlacement);
  const [deleting, setDeleting] = useState<Index | null>(null);
  const [notice, setNotice] = useState("");

  const vectors = new Map((counts.data?.data ?? []).map((c) => [c.index, c.vectors]));
  const refresh = () => {
    list.reload();
    counts.reload();
  };

  return (
    <>
      <h1>Indexes</h1>
      <p role="status" aria-live="polite" className="notice">
        {notice}
      </p>
      <ErrorMessage error={placement.error} title="Could not load your plan's tiers and clusters (the form offers the shared tier)." />
      <CreateIndexForm
        slug={slug}
        limits={placement.data?.limits}
        clusters={placement.data?.clusters ?? []}
        onCreated={(index) => {
          setNotice(`Index ${index.name} created.`);
          refresh();
        }}
      />
      {deleting ? (
        <DeleteIndex
          slug={slug}
          index={deleting}
          onCancel={() => setDeleting(null)}
          onDeleted={() => {
            setNotice(`Index ${deleting.name} deleted.`);
            setDeleting(null);
            refresh();
          }}
        />
      ) : null}
      {list.status === "loading" ? <Loading what="indexes" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the indexes." /> : null}
      <ErrorMessage error={counts.error} title="Could not count the stored vectors." />
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-indexes">
          <h2 id="no-indexes">No indexes yet — create one</h2>
          <p>
            An index holds vectors of one dimension, compared with one metric. Create one above with the dimension of your embedding model (e.g. 1536 for OpenAI&apos;s
            text-embedding-3-small), then upsert through the gateway with an API key that has the <code>write</code> scope.
          </p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Indexes">
          <table>
            <caption className="visually-hidden">Indexes of {tenant.name}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Dimension</th>
                <th scope="col">Metric</th>
                <th scope="col">Tier / engine</th>
                <th scope="col">Vectors</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((index) => (
                <tr key={index.id}>
                  <td className="row-name">
                    <Link to={`/t/${slug}/indexes/${index.name}`}>{index.name}</Link>
                  </td>
                  <td>{formatNumber(index.dimension)}</td>
                  <td>{index.metric}</td>
                  <td>
                    {index.tier} / {index.engine}
                    {index.cluster ? ` (${index.cluster})` : ""}
                  </td>
                  <td>{vectors.has(index.name) ? formatNumber(vectors.get(index.name) ?? 0) : "—"}</td>
                  <td>
                    <span className={`badge badge-${index.status}`}>{index.status}</span>
                  </td>
                  <td>
                    <button type="button" className="danger-link" onClick={() => setDeleting(index)} aria-label={`Delete ${index.name}`}>
                      Delete
                    </button>
                  </td>
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
