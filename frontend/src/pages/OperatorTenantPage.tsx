import { useCallback, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Limits, Plan, Tenant } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { formatNumber } from "../lib/format";
import { asApiError, useAsync } from "../lib/useAsync";
import { NotFound } from "./NotFound";

/** The limits an operator may override per tenant (the API's `LimitsOverrideInput`), with its ranges. */
export const NUMERIC_LIMITS = [
  { field: "max_indexes", label: "Indexes", min: 0, max: 2 ** 31 - 1 },
  { field: "max_vectors", label: "Stored vectors", min: 0, max: Number.MAX_SAFE_INTEGER },
  { field: "max_storage_bytes", label: "Storage (bytes)", min: 0, max: Number.MAX_SAFE_INTEGER },
  { field: "max_qps", label: "Queries per second", min: 0, max: 2 ** 31 - 1 },
  { field: "max_dimension", label: "Dimensions", min: 1, max: 65536 },
  { field: "max_upsert_batch", label: "Upsert batch", min: 1, max: 1000 },
  { field: "max_metadata_bytes", label: "Metadata bytes per record", min: 0, max: 40960 },
] as const;
type NumericLimit = (typeof NUMERIC_LIMITS)[number]["field"];
const LIST_LIMITS = [
  { field: "allowed_tiers", label: "Tiers", choices: ["shared", "dedicated"] },
  { field: "allowed_engines", label: "Engines", choices: ["pgvector", "qdrant"] },
] as const;
type ListLimit = (typeof LIST_LIMITS)[number]["field"];

export interface OverrideDraft {
  numbers: Record<NumericLimit, string>;
  /** null: the plan's. */
  lists: Record<ListLimit, string[] | null>;
  reason: string;
}

/** The form's starting point: the overridden limits filled in, the others blank (the plan's). */
export function draftFrom(limits: Limits): OverrideDraft {
  const overridden = new Set(limits.overridden);
  const numbers = Object.fromEntries(NUMERIC_LIMITS.map(({ field }) => [field, overridden.has(field) ? String(limits.limits[field]) : ""])) as Record<NumericLimit, string>;
  const lists = Object.fromEntries(LIST_LIMITS.map(({ field }) => [field, overridden.has(field) ? [...limits.limits[field]] : null])) as Record<ListLimit, string[] | null>;
  return { numbers, lists, reason: "" };
}

/** The PUT body (every field: blank or unset is null, the plan's), or the fields in error. */
export function overrideBody(draft: OverrideDraft): { body: Record<string, number | string[] | string | null>; errors?: undefined } | { body?: undefined; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const body: Record<string, number | string[] | string | null> = {};
  for (const { field, min, max } of NUMERIC_LIMITS) {
    const text = draft.numbers[field].trim();
    if (text === "") {
      body[field] = null;
    } else if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      errors[field] = `A whole number from ${formatNumber(min)} to ${formatNumber(max)}, or blank for the plan's.`;
    } else {
      body[field] = Number(text);
    }
  }
  for (const { field } of LIST_LIMITS) body[field] = draft.lists[field];
  body.reason = draft.reason;
  return Object.keys(errors).length ? { errors } : { body };
}

type Changed = (notice: string) => void;

function StatusSection({ tenant, onChanged }: { tenant: Tenant; onChanged: Changed }) {
  const [reason, setReason] = useState("");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const path = { tenant_slug: tenant.slug };

  async function act(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (tenant.status === "active") {
        await call(api.POST("/api/v1/tenants/{tenant_slug}/suspend", { params: { path }, body: { reason } }));
        onChanged(`Tenant ${tenant.slug} suspended.`);
      } else {
        await call(api.POST("/api/v1/tenants/{tenant_slug}/reactivate", { params: { path } }));
        onChanged(`Tenant ${tenant.slug} reactivated.`);
      }
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card" aria-labelledby="tenant-status-heading" onSubmit={act}>
      <h2 id="tenant-status-heading">
        Status: <span className={`badge badge-${tenant.status}`}>{tenant.status}</span>
      </h2>
      {tenant.status_reason ? <p>Reason: {tenant.status_reason}</p> : null}
      <ErrorMessage error={error} />
      {tenant.status === "deleted" ? (
        <p className="hint">A deleted tenant cannot be suspended or reactivated.</p>
      ) : tenant.status === "active" ? (
        <>
          <p className="hint">A suspended tenant&apos;s members and keys keep reading; every write is refused until it is reactivated.</p>
          <TextField label="Reason" name="reason" maxLength={300} value={reason} onChange={(e) => setReason(e.target.value)} hint="Shown to the tenant's members and kept in the audit log." />
          <button type="submit" className="danger" disabled={busy}>
            Suspend tenant
          </button>
        </>
      ) : (
        <button type="submit" className="primary" disabled={busy}>
          Reactivate tenant
        </button>
      )}
    </form>
  );
}

function PlanSection({ tenant, plans, onChanged }: { tenant: Tenant; plans: readonly Plan[]; onChanged: Changed }) {
  const [plan, setPlan] = useState(tenant.plan);
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await call(api.PUT("/api/v1/tenants/{tenant_slug}/plan", { params: { path: { tenant_slug: tenant.slug } }, body: { plan } }));
      onChanged(`Plan changed to ${plan}.`);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card inline-form" aria-labelledby="tenant-plan-heading" onSubmit={submit}>
      <h2 id="tenant-plan-heading">Plan</h2>
      <ErrorMessage error={error} />
      <SelectField label="New plan" name="plan" value={plan} onChange={(e) => setPlan(e.target.value)} error={fieldErrors(error, ["plan"]).plan}>
        {plans.map((p) => (
          <option key={p.slug} value={p.slug}>
            {p.name} ({p.slug}
            {p.is_public ? "" : ", private"})
          </option>
        ))}
      </SelectField>
      <button type="submit" className="primary" disabled={busy || plan === tenant.plan}>
        Change plan
      </button>
    </form>
  );
}

function LimitsSection({ tenant, limits, plan, onSaved }: { tenant: Tenant; limits: Limits; plan: Plan | undefined; onSaved: Changed }) {
  const [draft, setDraft] = useState<OverrideDraft>(() => draftFrom(limits));
  const [local, setLocal] = useState<FieldErrors>({});
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    const built = overrideBody(draft);
    setLocal(built.errors ?? {});
    if (!built.body) return;
    setBusy(true);
    try {
      const answer = await call(api.PUT("/api/v1/tenants/{tenant_slug}/limits", { params: { path: { tenant_slug: tenant.slug } }, body: built.body }));
      onSaved(answer.overridden.length ? `Limits saved: ${answer.overridden.join(", ")} overridden.` : "Limits saved: every limit is the plan's.");
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, [...NUMERIC_LIMITS.map((l) => l.field), ...LIST_LIMITS.map((l) => l.field), "reason"]) };
  return (
    <form className="card" aria-labelledby="tenant-limits-heading" onSubmit={submit} noValidate>
      <h2 id="tenant-limits-heading">Limit overrides</h2>
      <p className="hint">A blank field is the plan&apos;s ({tenant.plan}); a value replaces it for this tenant only. Cluster limits are the plan&apos;s alone.</p>
      <ErrorMessage error={error} />
      {NUMERIC_LIMITS.map(({ field, label }) => (
        <TextField
          key={field}
          label={label}
          name={field}
          inputMode="numeric"
          value={draft.numbers[field]}
          placeholder={plan ? String(plan[field]) : ""}
          onChange={(e) => setDraft({ ...draft, numbers: { ...draft.numbers, [field]: e.target.value } })}
          error={fields[field]}
          hint={plan ? `Plan: ${formatNumber(plan[field])}; now ${formatNumber(limits.limits[field])}.` : `Now ${formatNumber(limits.limits[field])}.`}
        />
      ))}
      {LIST_LIMITS.map(({ field, label, choices }) => {
        const chosen = draft.lists[field];
        return (
          <fieldset key={field} className="field">
            <legend>{label}</legend>
            <label className="checkbox">
              <input type="checkbox" checked={chosen === null} onChange={(e) => setDraft({ ...draft, lists: { ...draft.lists, [field]: e.target.checked ? null : [...(plan?.[field] ?? limits.limits[field])] } })} /> The plan&apos;s (
              {(plan?.[field] ?? []).join(", ") || "none"})
            </label>
            {chosen === null
              ? null
              : choices.map((choice) => (
                  <label key={choice} className="checkbox">
                    <input
                      type="checkbox"
                      checked={chosen.includes(choice)}
                      onChange={(e) => setDraft({ ...draft, lists: { ...draft.lists, [field]: e.target.checked ? [...chosen, choice] : chosen.filter((c) => c !== choice) } })}
                    />{" "}
                    {choice}
                  </label>
                ))}
            {fields[field] ? <span className="field-error">{fields[field]}</span> : null}
          </fieldset>
        );
      })}
      <TextField label="Why" name="reason" maxLength={300} value={draft.reason} onChange={(e) => setDraft({ ...draft, reason: e.target.value })} error={fields.reason} hint="Kept with the override and in the audit log." />
      <button type="submit" className="primary" disabled={busy}>
        Save overrides
      </button>
    </form>
  );
}

/** /operator/tenants/:slug: one tenant as an operator manages it: status, plan, limit overrides. */
export function OperatorTenantPage() {
  const { slug = "" } = useParams();
  const load = useCallback(async () => {
    const path = { tenant_slug: slug };
    const [tenant, limits, plans] = await Promise.all([
      call(api.GET("/api/v1/tenants/{tenant_slug}", { params: { path } })),
      call(api.GET("/api/v1/tenants/{tenant_slug}/limits", { params: { path } })),
      call(api.GET("/api/v1/plans")),
    ]);
    return { tenant, limits, plans: plans.data };
  }, [slug]);
  const state = useAsync(load);
  const [notice, setNotice] = useState("");
  const changed = (message: string) => {
    setNotice(message);
    state.reload();
  };
  if (state.status === "loading") return <Loading what={`tenant ${slug}`} />;
  if (state.status === "error") {
    if (state.error.status === 404 || state.error.code === "invalid_slug") return <NotFound />;
    return <ErrorMessage error={state.error} title="Could not load the tenant." />;
  }
  const { tenant, limits, plans } = state.data;
  // Remounted after each change, so each form starts from what the API now says.
  const version = `${tenant.status}/${tenant.plan}/${limits.overridden.join(",")}/${tenant.updated_at}`;
  return (
    <>
      <p className="hint">
        <Link to="/operator">Tenants</Link> / {tenant.slug}
      </p>
      <h1>{tenant.name}</h1>
      <p>
        <code>{tenant.slug}</code> · <Link to={`/t/${tenant.slug}`}>Open its console</Link> (operators act as admins in every tenant; what they do is audited)
      </p>
      <p role="status" aria-live="polite" className="notice">
        {notice}
      </p>
      <StatusSection key={`s-${version}`} tenant={tenant} onChanged={changed} />
      <PlanSection key={`p-${version}`} tenant={tenant} plans={plans} onChanged={changed} />
      <LimitsSection key={`l-${version}`} tenant={tenant} limits={limits} plan={plans.find((p) => p.slug === tenant.plan)} onSaved={changed} />
    </>
  );
}
