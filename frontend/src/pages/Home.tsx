import { useCallback, useState, type FormEvent } from "react";
import { Navigate, useNavigate } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError } from "../api/errors";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { pickTenant, rememberTenant } from "../lib/tenantMemory";
import { asApiError, useAsync } from "../lib/useAsync";

/** "/": lands on the last tenant used, or the first; a user without one creates it. */
export function Home() {
  const load = useCallback(() => call(api.GET("/api/v1/tenants", { params: { query: { limit: 100 } } })), []);
  const tenants = useAsync(load);
  if (tenants.status === "loading") return <Loading what="your tenants" />;
  if (tenants.status === "error") return <ErrorMessage error={tenants.error} title="Could not list your tenants." />;
  const slug = pickTenant(tenants.data.data.map((t) => t.slug));
  if (!slug) return <Navigate to="/new-tenant" replace />;
  return <Navigate to={`/t/${slug}`} replace />;
}

export function CreateTenantForm({ first }: { first?: boolean }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const tenant = await call(api.POST("/api/v1/tenants", { body: { name } }));
      rememberTenant(tenant.slug);
      navigate(`/t/${tenant.slug}`);
    } catch (cause) {
      setError(asApiError(cause));
      setBusy(false);
    }
  }

  const fields = fieldErrors(error, ["name", "slug"]);
  return (
    <form onSubmit={submit} noValidate className="card">
      <h2>{first ? "Create your first tenant" : "Create a tenant"}</h2>
      <p className="hint">A tenant holds your indexes, API keys and members. Its URL name is derived from its name.</p>
      <ErrorMessage error={error} />
      <TextField label="Tenant name" name="name" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} error={fields.name ?? fields.slug} />
      <button type="submit" className="primary" disabled={busy}>
        Create tenant
      </button>
    </form>
  );
}

export function NewTenantPage() {
  return (
    <main className="auth-page">
      <h1>Welcome to Vectorplane</h1>
      <CreateTenantForm first />
    </main>
  );
}
