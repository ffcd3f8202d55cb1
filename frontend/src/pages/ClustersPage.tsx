import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Cluster, ClusterSize, ClusterStatus, Engine, SizeSlug } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { INDEX_NAME } from "./IndexesPage";
import { useTenant } from "./TenantLayout";

const ENGINES: readonly Engine[] = ["pgvector", "qdrant"];
/** The statuses a worker moves on from by itself: the pages refresh while a cluster is in one. */
export const TRANSITIONAL: readonly ClusterStatus[] = ["pending", "provisioning", "updating", "deleting"];
export const POLL_MS = 3000;
export const MAX_REPLICAS = 10; // the API's bound; the plan may allow fewer (it says so on the field)

/** Creating, resizing and deleting clusters is for owners and admins (the API's minimum role). */
export const canManageClusters = (role: string | null | undefined) => role === "owner" || role === "admin";

export function isTransitional(status: ClusterStatus): boolean {
  return TRANSITIONAL.includes(status);
}

/** "xs — 0.5 vCPU, 1 GiB RAM, 10 GiB disk" */
export function sizeLabel(size: ClusterSize): string {
  return `${size.slug} — ${size.description || `${size.cpu} CPU, ${size.memory} memory, ${size.storage} storage`}`;
}

export function sizeResources(size: ClusterSize): string {
  return `CPU ${size.cpu}, memory ${size.memory}, storage ${size.storage} per replica.`;
}

/** The rules the API enforces on a cluster's name and replicas, checked before sending. */
export function validateCluster(name: string | null, replicas: string): FieldErrors {
  const errors: FieldErrors = {};
  if (name !== null && !INDEX_NAME.test(name)) errors.name = "1–45 lowercase letters, digits and inner hyphens.";
  if (!/^\d+$/.test(replicas) || Number(replicas) < 1 || Number(replicas) > MAX_REPLICAS) errors.replicas = `A whole number from 1 to ${MAX_REPLICAS} (your plan may allow fewer).`;
  return errors;
}

export function useClusterSizes(slug: string) {
  const load = useCallback(() => call(api.GET("/api/v1/tenants/{tenant_slug}/cluster-sizes", { params: { path: { tenant_slug: slug } } })), [slug]);
  return useAsync(load);
}

/** Calls `reload` POLL_MS after each answer (`answer`: a new value per answer) while `active`. */
export function usePolling(active: boolean, answer: unknown, reload: () => void) {
  useEffect(() => {
    if (!active) return;
    const timer = setTimeout(reload, POLL_MS);
    return () => clearTimeout(timer);
  }, [active, answer, reload]);
}

export function StatusBadge({ status }: { status: ClusterStatus }) {
  return <span className={`badge badge-${status}`}>{status}</span>;
}

/** The size select: every size of the catalogue, those the plan does not offer disabled. */
export function SizeSelect({ sizes, value, onChange, error }: { sizes: readonly ClusterSize[]; value: string; onChange: (size: string) => void; error?: string | undefined }) {
  const selected = sizes.find((s) => s.slug === value);
  return (
    <SelectField label="Size" name="size" value={value} onChange={(e) => onChange(e.target.value)} error={error} hint={selected ? sizeResources(selected) : undefined}>
      {sizes.map((s) => (
        <option key={s.slug} value={s.slug} disabled={!s.allowed}>
          {sizeLabel(s)}
          {s.allowed ? "" : " (not in your plan)"}
        </option>
      ))}
    </SelectField>
  );
}

function CreateClusterForm({ slug, sizes, onCreated }: { slug: string; sizes: readonly ClusterSize[]; onCreated: (cluster: Cluster) => void }) {
  const [name, setName] = useState("");
  const [engine, setEngine] = useState<Engine>("pgvector");
  const [chosenSize, setSize] = useState("");
  const [replicas, setReplicas] = useState("1");
  const [error, setError] = useState<ApiError | undefined>();
  const [local, setLocal] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const size = chosenSize || (sizes.find((s) => s.allowed)?.slug ?? "");

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const problems = validateCluster(name, replicas);
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const cluster = await call(
        api.POST("/api/v1/tenants/{tenant_slug}/clusters", {
          params: { path: { tenant_slug: slug } },
          body: { name, engine, size: size as SizeSlug, replicas: Number(replicas) },
        }),
      );
      setName("");
      onCreated(cluster);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["name", "size", "replicas", "engine"]) };
  return (
    <form onSubmit={submit} noValidate className="card inline-form" aria-labelledby="create-cluster-heading">
      <h2 id="create-cluster-heading">Create a dedicated cluster</h2>
      <ErrorMessage error={error} />
      <TextField label="Name" name="name" value={name} onChange={(e) => setName(e.target.value)} error={fields.name} hint="Lowercase letters, digits and hyphens." autoComplete="off" />
      <SelectField label="Engine" name="engine" value={engine} onChange={(e) => setEngine(e.target.value as Engine)} error={fields.engine}>
        {ENGINES.map((e) => (
          <option key={e} value={e}>
            {e}
          </option>
        ))}
      </SelectField>
      <SizeSelect sizes={sizes} value={size} onChange={setSize} error={fields.size} />
      <TextField
        label="Replicas"
        name="replicas"
        inputMode="numeric"
        value={replicas}
        onChange={(e) => setReplicas(e.target.value)}
        error={fields.replicas}
        hint={engine === "pgvector" ? "pgvector clusters run one node." : "Qdrant nodes holding the data."}
      />
      <button type="submit" className="primary" disabled={busy || !size}>
        Create cluster
      </button>
    </form>
  );
}

function CreateSection({ slug, plan, onCreated }: { slug: string; plan: string; onCreated: (cluster: Cluster) => void }) {
  const sizes = useClusterSizes(slug);
  if (sizes.status === "loading") return <Loading what="the cluster sizes" />;
  if (sizes.status === "error") return <ErrorMessage error={sizes.error} title="Could not load the cluster sizes." />;
  if (!sizes.data.data.some((s) => s.allowed)) {
    return (
      <p role="note" className="warning">
        The <span className="plan">{plan}</span> plan does not include dedicated clusters. An operator can move this tenant to a plan that does; until then its indexes live on the shared tier.
      </p>
    );
  }
  return <CreateClusterForm slug={slug} sizes={sizes.data.data} onCreated={onCreated} />;
}

export function ClustersPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const manage = canManageClusters(tenant.role);
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/clusters", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  const [notice, setNotice] = useState("");
  const busy = list.items.some((c) => isTransitional(c.status));
  usePolling(busy, list.answered, list.reload);

  return (
    <>
      <h1>Dedicated clusters</h1>
      <p role="status" aria-live="polite" className="notice">
        {notice}
      </p>
      {manage ? (
        <CreateSection
          slug={slug}
          plan={tenant.plan}
          onCreated={(cluster) => {
            setNotice(`Cluster ${cluster.name} ordered: it is ${cluster.status} until a worker has started it.`);
            list.reload();
          }}
        />
      ) : (
        <p role="note" className="hint">
          Owners and admins create, resize and delete clusters; your role ({tenant.role}) can see them.
        </p>
      )}
      {list.status === "loading" ? <Loading what="clusters" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the clusters." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-clusters">
          <h2 id="no-clusters">No dedicated clusters yet</h2>
          <p>
            A dedicated cluster is a database server — pgvector (PostgreSQL) or Qdrant — that runs only this tenant&apos;s indexes, with the CPU, memory and disk of its size, instead
            of the shared tier that every tenant&apos;s indexes share. Order one{manage ? " above" : ""}; a worker starts it (<code>pending</code>, <code>provisioning</code>, then{" "}
            <code>ready</code>), and indexes created with <code>tier: dedicated</code> and <code>cluster: &lt;name&gt;</code> live on it.
          </p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Clusters">
          <table>
            <caption className="visually-hidden">Dedicated clusters of {tenant.name}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Engine</th>
                <th scope="col">Size</th>
                <th scope="col">Replicas</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((cluster) => (
                <tr key={cluster.id}>
                  <td className="row-name">
                    <Link to={`/t/${slug}/clusters/${cluster.name}`}>{cluster.name}</Link>
                  </td>
                  <td>{cluster.engine}</td>
                  <td>{cluster.size}</td>
                  <td>{cluster.replicas}</td>
                  <td>
                    <StatusBadge status={cluster.status} />
                    {cluster.status_message ? <span className="hint status-message"> {cluster.status_message}</span> : null}
                  </td>
                  <td>{formatDate(cluster.created_at)}</td>
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
