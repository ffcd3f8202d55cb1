import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Cluster, ClusterDetail, ClusterSize, SizeSlug } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { canManageClusters, isTransitional, POLL_MS, SizeSelect, sizeResources, StatusBadge, useClusterSizes, usePolling, validateCluster } from "./ClustersPage";
import { useTenant } from "./TenantLayout";

function ResizeForm({ slug, cluster, sizes, onResized }: { slug: string; cluster: ClusterDetail; sizes: readonly ClusterSize[]; onResized: (cluster: Cluster) => void }) {
  const [size, setSize] = useState(cluster.size);
  const [replicas, setReplicas] = useState(String(cluster.replicas));
  const [error, setError] = useState<ApiError | undefined>();
  const [local, setLocal] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const unchanged = size === cluster.size && replicas === String(cluster.replicas);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const problems = validateCluster(null, replicas);
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const resized = await call(
        api.PATCH("/api/v1/tenants/{tenant_slug}/clusters/{cluster_name}", {
          params: { path: { tenant_slug: slug, cluster_name: cluster.name } },
          body: { size: size as SizeSlug, replicas: Number(replicas) },
        }),
      );
      onResized(resized);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["size", "replicas", "engine"]) };
  return (
    <form onSubmit={submit} noValidate className="card inline-form" aria-labelledby="resize-heading">
      <h2 id="resize-heading">Resize</h2>
      <ErrorMessage error={error} />
      <SizeSelect sizes={sizes} value={size} onChange={setSize} error={fields.size} />
      <TextField
        label="Replicas"
        name="replicas"
        inputMode="numeric"
        value={replicas}
        onChange={(e) => setReplicas(e.target.value)}
        error={fields.replicas ?? fields.engine}
        hint={cluster.engine === "pgvector" ? "pgvector clusters run one node." : "Qdrant nodes holding the data."}
      />
      <button type="submit" className="primary" disabled={busy || unchanged}>
        Resize cluster
      </button>
    </form>
  );
}

function DeleteCluster({ slug, cluster, onDeleted, onCancel }: { slug: string; cluster: ClusterDetail; onDeleted: (cluster: Cluster) => void; onCancel: () => void }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (typed !== cluster.name) return;
    setBusy(true);
    setError(undefined);
    try {
      const deleted = await call(api.DELETE("/api/v1/tenants/{tenant_slug}/clusters/{cluster_name}", { params: { path: { tenant_slug: slug, cluster_name: cluster.name } } }));
      onDeleted(deleted);
    } catch (cause) {
      setError(asApiError(cause));
      setBusy(false);
    }
  }

  const count = cluster.indexes.length;
  return (
    <form
      role="dialog"
      aria-labelledby="delete-cluster-heading"
      className="card danger-zone"
      onSubmit={submit}
      onKeyDown={(e) => {
        if (e.key === "Escape") onCancel();
      }}
    >
      <h2 id="delete-cluster-heading">Delete cluster {cluster.name}?</h2>
      <p>
        This stops the cluster and deletes its data
        {count ? `, with its ${count === 1 ? "index" : `${count} indexes`} (${cluster.indexes.join(", ")}) and all their vectors` : ""}. It cannot be undone.
      </p>
      <ErrorMessage error={error} />
      <div className="field">
        <label htmlFor="confirm-cluster-name">
          Type <strong>{cluster.name}</strong> to confirm
        </label>
        <input id="confirm-cluster-name" ref={input} autoComplete="off" value={typed} onChange={(e) => setTyped(e.target.value)} />
      </div>
      <div className="actions">
        <button type="submit" className="danger" disabled={busy || typed !== cluster.name}>
          Delete cluster
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function History({ slug, name, version }: { slug: string; name: string; version: string }) {
  const loadPage = useCallback(
    (cursor: string | undefined) =>
      call(api.GET("/api/v1/tenants/{tenant_slug}/clusters/{cluster_name}/events", { params: { path: { tenant_slug: slug, cluster_name: name }, query: { limit: 20, ...(cursor ? { cursor } : {}) } } })),
    [slug, name],
  );
  const events = usePaged(loadPage);
  const { reload } = events;
  // A new state of the cluster (seen by the page's refresh) is a new event: read the history again.
  const seen = useRef(version);
  useEffect(() => {
    if (seen.current === version) return;
    seen.current = version;
    reload();
  }, [version, reload]);

  return (
    <section aria-labelledby="history-heading">
      <h2 id="history-heading">State history</h2>
      {events.status === "loading" ? <Loading what="the history" /> : null}
      {events.status === "error" ? <ErrorMessage error={events.error} title="Could not load the history." /> : null}
      {events.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Status changes">
          <table>
            <caption className="visually-hidden">Status changes of {name}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Change</th>
                <th scope="col">Generation</th>
                <th scope="col">Size</th>
                <th scope="col">Replicas</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {events.items.map((event) => (
                <tr key={event.id}>
                  <td>{formatDate(event.at)}</td>
                  <td>
                    {event.from_status || "ordered"} → <StatusBadge status={event.to_status} />
                  </td>
                  <td>{event.generation}</td>
                  <td>{event.size}</td>
                  <td>{event.replicas}</td>
                  <td className="message-cell">{event.message || "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <LoadMore hasMore={events.hasMore} loading={events.loadingMore} error={events.moreError} onClick={events.loadMore} />
    </section>
  );
}

function Facts({ cluster, sizes }: { cluster: ClusterDetail; sizes: readonly ClusterSize[] | undefined }) {
  const size = sizes?.find((s) => s.slug === cluster.size);
  return (
    <section className="card" aria-labelledby="cluster-facts-heading">
      <h2 id="cluster-facts-heading" className="visually-hidden">
        About this cluster
      </h2>
      <dl className="index-facts">
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={cluster.status} />
          </dd>
        </div>
        <div>
          <dt>Engine</dt>
          <dd>{cluster.engine}</dd>
        </div>
        <div>
          <dt>Size</dt>
          <dd>
            {cluster.size}
            {size ? <span className="hint facts-hint">{sizeResources(size)}</span> : null}
          </dd>
        </div>
        <div>
          <dt>Replicas</dt>
          <dd>{cluster.replicas}</dd>
        </div>
        <div>
          <dt>Generation</dt>
          <dd>{cluster.observed_generation === cluster.generation ? cluster.generation : `${cluster.generation} (running ${cluster.observed_generation})`}</dd>
        </div>
        <div>
          <dt>Driver</dt>
          <dd>{cluster.driver}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{formatDate(cluster.created_at)}</dd>
        </div>
        <div>
          <dt>Ready since</dt>
          <dd>{formatDate(cluster.ready_at)}</dd>
        </div>
      </dl>
      {cluster.status_message ? (
        <p className={cluster.status === "failed" ? "error" : "hint"}>
          <strong>Status: </strong>
          {cluster.status_message}
        </p>
      ) : null}
      {cluster.last_error && cluster.last_error !== cluster.status_message ? (
        <p className="hint">
          <strong>Last error</strong> ({formatDate(cluster.last_error_at)}): {cluster.last_error}
        </p>
      ) : null}
    </section>
  );
}

function Indexes({ slug, cluster }: { slug: string; cluster: ClusterDetail }) {
  return (
    <section className="card" aria-labelledby="cluster-indexes-heading">
      <h2 id="cluster-indexes-heading">Indexes on this cluster</h2>
      {cluster.indexes.length ? (
        <ul>
          {cluster.indexes.map((index) => (
            <li key={index}>
              <Link to={`/t/${slug}/indexes/${index}`}>{index}</Link>
            </li>
          ))}
        </ul>
      ) : (
        <p className="hint">
          None yet. Once the cluster is <code>ready</code>, create indexes on it on the <Link to={`/t/${slug}/indexes`}>Indexes page</Link> (Where: cluster {cluster.name}), or
          through the management API with <code>tier: dedicated</code>, <code>engine: {cluster.engine}</code> and <code>cluster: {cluster.name}</code>; they are listed here.
        </p>
      )}
    </section>
  );
}

export function ClusterPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const manage = canManageClusters(tenant.role);
  const { name = "" } = useParams();
  const load = useCallback(() => call(api.GET("/api/v1/tenants/{tenant_slug}/clusters/{cluster_name}", { params: { path: { tenant_slug: slug, cluster_name: name } } })), [slug, name]);
  const state = useAsync(load);
  const sizes = useClusterSizes(slug);
  const [deleting, setDeleting] = useState(false);
  const [notice, setNotice] = useState("");
  const cluster = state.data;
  usePolling(cluster ? isTransitional(cluster.status) : false, cluster, state.reload);

  if (state.status === "loading") return <Loading what={`cluster ${name}`} />;
  if (state.status === "error") {
    if (state.error.status === 404 || state.error.status === 400) {
      return (
        <section className="not-found">
          <h1>Page not found</h1>
          <p>
            There is no cluster {name} here: it was deleted, or you do not have access to it. <Link to={`/t/${slug}/clusters`}>Back to the clusters</Link>
          </p>
        </section>
      );
    }
    return <ErrorMessage error={state.error} title="Could not load the cluster." />;
  }
  const detail = state.data;
  const version = `${detail.status}/${detail.generation}/${detail.observed_generation}/${detail.updated_at}`;
  return (
    <>
      <p className="hint">
        <Link to={`/t/${slug}/clusters`}>Clusters</Link> / {detail.name}
      </p>
      <h1>{detail.name}</h1>
      <p role="status" aria-live="polite" className="notice">
        {notice}
        {isTransitional(detail.status) ? ` Refreshing every ${POLL_MS / 1000} seconds while the cluster is ${detail.status}.` : ""}
      </p>
      <Facts cluster={detail} sizes={sizes.data?.data} />
      <ErrorMessage error={sizes.error} title="Could not load the cluster sizes." />
      <History slug={slug} name={detail.name} version={version} />
      <Indexes slug={slug} cluster={detail} />
      {manage && detail.status !== "deleting" && sizes.data ? (
        <ResizeForm
          key={`${detail.size}/${detail.replicas}`}
          slug={slug}
          cluster={detail}
          sizes={sizes.data.data}
          onResized={(resized) => {
            setNotice(`Resize to ${resized.size} × ${resized.replicas} requested.`);
            state.reload();
          }}
        />
      ) : null}
      {manage && detail.status !== "deleting" ? (
        deleting ? (
          <DeleteCluster
            slug={slug}
            cluster={detail}
            onCancel={() => setDeleting(false)}
            onDeleted={(deleted) => {
              setDeleting(false);
              setNotice(`Cluster ${deleted.name} is being deleted.`);
              state.reload();
            }}
          />
        ) : (
          <section className="card danger-zone" aria-labelledby="danger-heading">
            <h2 id="danger-heading">Delete this cluster</h2>
            <p>Stops the cluster and deletes its indexes and data.</p>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>
              Delete cluster…
            </button>
          </section>
        )
      ) : null}
    </>
  );
}
