import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Index, Metric } from "../api/types";
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
export function validateIndex(name: string, dimension: string): FieldErrors {
  const errors: FieldErrors = {};
  if (!INDEX_NAME.test(name)) errors.name = "1–45 lowercase letters, digits and inner hyphens.";
  if (!/^\d+$/.test(dimension) || Number(dimension) < 1 || Number(dimension) > 65536) errors.dimension = "A whole number from 1 to 65,536 (your plan may allow fewer).";
  return errors;
}

function CreateIndexForm({ slug, onCreated }: { slug: string; onCreated: (index: Index) => void }) {
  const [name, setName] = useState("");
  const [dimension, setDimension] = useState("");
  const [metric, setMetric] = useState<Metric>("cosine");
  const [error, setError] = useState<ApiError | undefined>();
  const [local, setLocal] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const problems = validateIndex(name, dimension);
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const index = await call(
        api.POST("/api/v1/tenants/{tenant_slug}/indexes", {
          params: { path: { tenant_slug: slug } },
          body: { name, dimension: Number(dimension), metric },
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

  const fields = { ...local, ...fieldErrors(error, ["name", "dimension", "metric"]) };
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
  const loadCounts = useCallback(() => call(api.GET("/api/v1/tenants/{tenant_slug}/usage/stored-vectors", { params: { path: { tenant_slug: slug } } })), [slug]);
  const counts = useAsync(loadCounts);
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
      <CreateIndexForm
        slug={slug}
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
