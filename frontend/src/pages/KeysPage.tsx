import { useCallback, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError } from "../api/errors";
import type { ApiKey, ApiKeyCreated, Filter, Scope } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { CopyField } from "../components/CopyField";
import { SelectField, TextField } from "../components/Field";
import { FilterEditor } from "../components/FilterEditor";
import { checkFilterText } from "../lib/filterLanguage";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { asApiError } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

const ROW_FILTER_EXAMPLES = [
  { label: "one end user's rows", filter: '{"user_id": {"$eq": "u42"}}' },
  { label: "public documents only", filter: '{"visibility": {"$in": ["public"]}}' },
];

const GRACE_CHOICES: readonly { seconds: number; label: string }[] = [
  { seconds: 0, label: "none: revoke the old key now" },
  { seconds: 3600, label: "1 hour" },
  { seconds: 86400, label: "24 hours" },
  { seconds: 604800, label: "7 days" },
];

/** "a, b ,c" → ["a", "b", "c"] (empty items dropped). */
export function splitList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

function restrictions(key: ApiKey): string {
  const parts = [
    key.index_names.length ? `indexes: ${key.index_names.join(", ")}` : "",
    key.namespaces.length ? `namespaces: ${key.namespaces.join(", ")}` : "",
    key.row_filter ? `rows: ${JSON.stringify(key.row_filter)}` : "",
    key.id_prefix ? `ids: ${key.id_prefix}…` : "",
  ].filter(Boolean);
  return parts.length ? parts.join("; ") : "none";
}

const SCOPES: readonly { scope: Scope; what: string }[] = [
  { scope: "read", what: "query and fetch vectors" },
  { scope: "write", what: "upsert, update and delete vectors" },
  { scope: "admin", what: "manage the tenant through the management API" },
];

function MintedSecret({ minted, onDone }: { minted: ApiKeyCreated; onDone: () => void }) {
  return (
    <section className="card secret" aria-labelledby="minted-heading">
      <h2 id="minted-heading">Key {minted.name} minted</h2>
      <p>Copy the secret now: it is shown only once and cannot be recovered.</p>
      <CopyField label="Secret" value={minted.key} />
      <button type="button" onClick={onDone}>
        Done, I stored it
      </button>
    </section>
  );
}

function MintKeyForm({ slug, onMinted }: { slug: string; onMinted: (key: ApiKeyCreated) => void }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<Scope[]>(["read"]);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const [local, setLocal] = useState<Record<string, string>>({});
  const [indexNames, setIndexNames] = useState("");
  const [namespaces, setNamespaces] = useState("");
  const [rowFilter, setRowFilter] = useState("");
  const [idPrefix, setIdPrefix] = useState("");

  function toggle(scope: Scope, on: boolean) {
    setScopes((current) => (on ? [...current.filter((s) => s !== scope), scope] : current.filter((s) => s !== scope)));
  }

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const problems: Record<string, string> = {};
    if (!name.trim()) problems.name = "Give the key a name, e.g. the service that uses it.";
    if (scopes.length === 0) problems.scopes = "Choose at least one scope.";
    const filter = checkFilterText(rowFilter);
    if (!filter.ok) problems.row_filter = filter.error;
    else if (filter.value && scopes.includes("write") && !idPrefix) problems.id_prefix = "A key with a row filter and the write scope needs an ID prefix, e.g. u42#.";
    setLocal(problems);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const minted = await call(
        api.POST("/api/v1/tenants/{tenant_slug}/api-keys", {
          params: { path: { tenant_slug: slug } },
          body: {
            name,
            scopes,
            index_names: splitList(indexNames),
            namespaces: splitList(namespaces),
            row_filter: filter.ok && filter.value ? (filter.value as Filter) : null,
            id_prefix: idPrefix,
          },
        }),
      );
      setName("");
      setIndexNames("");
      setNamespaces("");
      setRowFilter("");
      setIdPrefix("");
      onMinted(minted);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["name", "scopes", "index_names", "namespaces", "row_filter", "id_prefix"]) };
  return (
    <form onSubmit={submit} noValidate className="card inline-form" aria-labelledby="mint-heading">
      <h2 id="mint-heading">Mint an API key</h2>
      <ErrorMessage error={error} />
      <TextField label="Key name" name="name" maxLength={100} value={name} onChange={(e) => setName(e.target.value)} error={fields.name} autoComplete="off" />
      <fieldset aria-describedby={fields.scopes ? "scopes-error" : undefined} aria-invalid={fields.scopes ? true : undefined}>
        <legend>Scopes</legend>
        {SCOPES.map(({ scope, what }) => (
          <div key={scope} className="checkbox">
            <input id={`scope-${scope}`} type="checkbox" checked={scopes.includes(scope)} onChange={(e) => toggle(scope, e.target.checked)} aria-describedby={`scope-${scope}-what`} />
            <label htmlFor={`scope-${scope}`}>{scope}</label>
            <span id={`scope-${scope}-what`} className="hint">
              {what}
            </span>
          </div>
        ))}
        {fields.scopes ? (
          <span id="scopes-error" className="field-error">
            {fields.scopes}
          </span>
        ) : null}
      </fieldset>
      <details className="restrictions">
        <summary>Restrictions (optional)</summary>
        <TextField label="Only these indexes" name="index_names" value={indexNames} onChange={(e) => setIndexNames(e.target.value)} error={fields.index_names} hint="Comma-separated index names; empty: every index." autoComplete="off" />
        <TextField label="Only these namespaces" name="namespaces" value={namespaces} onChange={(e) => setNamespaces(e.target.value)} error={fields.namespaces} hint="Comma-separated; empty: every namespace." autoComplete="off" />
        <FilterEditor
          label="Row filter"
          name="row_filter"
          value={rowFilter}
          onChange={setRowFilter}
          error={fields.row_filter}
          examples={ROW_FILTER_EXAMPLES}
          hint="Optional: the gateway ANDs it into every read of this key and refuses writes whose metadata does not satisfy it."
        />
        <TextField label="ID prefix" name="id_prefix" value={idPrefix} onChange={(e) => setIdPrefix(e.target.value)} error={fields.id_prefix} hint="Every ID this key writes must start with it (needed with a row filter and the write scope)." autoComplete="off" maxLength={256} />
      </details>
      <button type="submit" className="primary" disabled={busy}>
        Mint key
      </button>
    </form>
  );
}

function RevokeButton({ slug, apiKey, onRevoked }: { slug: string; apiKey: ApiKey; onRevoked: (error?: ApiError) => void }) {
  const [busy, setBusy] = useState(false);
  async function revoke() {
    setBusy(true);
    try {
      await call(api.POST("/api/v1/tenants/{tenant_slug}/api-keys/{key_id}/revoke", { params: { path: { tenant_slug: slug, key_id: apiKey.id } } }));
      onRevoked();
    } catch (cause) {
      onRevoked(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }
  return (
    <button type="button" className="danger-link" onClick={revoke} disabled={busy} aria-label={`Revoke ${apiKey.name}`}>
      Revoke
    </button>
  );
}

function RotateForm({ slug, apiKey, onRotated, onCancel }: { slug: string; apiKey: ApiKey; onRotated: (key: ApiKeyCreated) => void; onCancel: () => void }) {
  const [grace, setGrace] = useState(3600);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onRotated(await call(api.POST("/api/v1/tenants/{tenant_slug}/api-keys/{key_id}/rotate", { params: { path: { tenant_slug: slug, key_id: apiKey.id } }, body: { grace_seconds: grace } })));
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form onSubmit={submit} className="card inline-form" aria-labelledby="rotate-heading">
      <h2 id="rotate-heading">Rotate {apiKey.name}</h2>
      <p>A new secret with the same scopes and restrictions is minted; the old one keeps working for the grace period, then is revoked.</p>
      <ErrorMessage error={error} />
      <SelectField label="Grace period" name="grace_seconds" value={String(grace)} onChange={(e) => setGrace(Number(e.target.value))} error={fieldErrors(error, ["grace_seconds"]).grace_seconds}>
        {GRACE_CHOICES.map((choice) => (
          <option key={choice.seconds} value={choice.seconds}>
            {choice.label}
          </option>
        ))}
      </SelectField>
      <button type="submit" className="primary" disabled={busy}>
        Rotate key
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}

export function KeysPage() {
  const { slug, role } = useTenant();
  if (role === "viewer") {
    return (
      <>
        <h1>API keys</h1>
        <p role="note" className="warning">
          Viewers cannot see or mint API keys: ask an owner or admin of this tenant for the member role.
        </p>
      </>
    );
  }
  return <KeysList slug={slug} />;
}

function KeysList({ slug }: { slug: string }) {
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/api-keys", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  const [minted, setMinted] = useState<ApiKeyCreated | null>(null);
  const [actionError, setActionError] = useState<ApiError | undefined>();
  const [notice, setNotice] = useState("");
  const [rotating, setRotating] = useState<ApiKey | null>(null);

  return (
    <>
      <h1>API keys</h1>
      <p className="hint">Keys authenticate the data plane (Pinecone&apos;s API). A key with the admin scope also manages the tenant.</p>
      {minted ? (
        <MintedSecret minted={minted} onDone={() => setMinted(null)} />
      ) : rotating ? (
        <RotateForm
          slug={slug}
          apiKey={rotating}
          onCancel={() => setRotating(null)}
          onRotated={(key) => {
            setRotating(null);
            setMinted(key);
            setNotice(`Key ${key.name} rotated.`);
            list.reload();
          }}
        />
      ) : (
        <MintKeyForm
          slug={slug}
          onMinted={(key) => {
            setMinted(key);
            list.reload();
          }}
        />
      )}
      <p role="status" aria-live="polite" className="notice">
        {notice}
      </p>
      <ErrorMessage error={actionError} />
      {list.status === "loading" ? <Loading what="API keys" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the API keys." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-keys">
          <h2 id="no-keys">No API keys yet — mint one</h2>
          <p>
            Mint a key with the <code>read</code> and <code>write</code> scopes to upsert and query through the gateway; its secret is shown once, right after minting.
          </p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="API keys">
          <table>
            <caption className="visually-hidden">API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Scopes</th>
                <th scope="col">Restrictions</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((key) => (
                <tr key={key.id}>
                  <td className="row-name">{key.name}</td>
                  <td>
                    <code>{key.prefix}</code>
                  </td>
                  <td>{key.scopes.join(", ")}</td>
                  <td className="restrictions-cell">{restrictions(key)}</td>
                  <td>{formatDate(key.last_used_at, "never")}</td>
                  <td>{key.status === "rotating" && key.revoke_after ? `revoked ${formatDate(key.revoke_after)}` : formatDate(key.expires_at, "never")}</td>
                  <td>
                    <span className={`badge badge-${key.status}`}>{key.status}</span>
                  </td>
                  <td>
                    {key.status === "active" ? (
                      <button type="button" className="link" onClick={() => setRotating(key)} aria-label={`Rotate ${key.name}`}>
                        Rotate
                      </button>
                    ) : null}
                    {key.status === "active" || key.status === "rotating" ? (
                      <RevokeButton
                        slug={slug}
                        apiKey={key}
                        onRevoked={(error) => {
                          setActionError(error);
                          if (!error) {
                            setNotice(`Key ${key.name} revoked.`);
                            list.reload();
                          }
                        }}
                      />
                    ) : null}
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
