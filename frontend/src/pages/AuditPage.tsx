import { useCallback, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import type { AuditEvent } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

export interface AuditFilters {
  action: string;
  target_type: string;
  since: string;
  until: string;
}

const NO_FILTERS: AuditFilters = { action: "", target_type: "", since: "", until: "" };

/** The API's query for the filters: empty ones left out, local times sent as ISO 8601. */
export function auditQuery(filters: AuditFilters): Record<string, string> {
  const query: Record<string, string> = {};
  if (filters.action.trim()) query.action = filters.action.trim();
  if (filters.target_type.trim()) query.target_type = filters.target_type.trim();
  for (const key of ["since", "until"] as const) {
    const when = filters[key] ? new Date(filters[key]) : null;
    if (when && !Number.isNaN(when.getTime())) query[key] = when.toISOString();
  }
  return query;
}

function EventDetails({ event }: { event: AuditEvent }) {
  return (
    <details>
      <summary>
        <span className="visually-hidden">Details of event {event.id}</span>
        <span aria-hidden="true">Details</span>
      </summary>
      <dl className="facts">
        <dt>Actor</dt>
        <dd>
          {event.actor.type}: {event.actor.label}
          {event.actor.via_token ? " (personal access token)" : ""}
        </dd>
        <dt>Target</dt>
        <dd>
          {event.target.type} {event.target.label} <code>{event.target.id}</code>
        </dd>
        <dt>User agent</dt>
        <dd>{event.user_agent || "—"}</dd>
      </dl>
      <pre className="json">{JSON.stringify(event.details, null, 2)}</pre>
    </details>
  );
}

/** The audit trail, newest first (admins), with the API's filters and each event's details. */
export function AuditPage() {
  const { slug } = useTenant();
  const [draft, setDraft] = useState<AuditFilters>(NO_FILTERS);
  const [filters, setFilters] = useState<AuditFilters>(NO_FILTERS);
  const loadPage = useCallback(
    (cursor: string | undefined) =>
      call(api.GET("/api/v1/tenants/{tenant_slug}/audit-events", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...auditQuery(filters), ...(cursor ? { cursor } : {}) } } })),
    [slug, filters],
  );
  const list = usePaged(loadPage);
  const set = (key: keyof AuditFilters) => (e: { target: { value: string } }) => setDraft((d) => ({ ...d, [key]: e.target.value }));
  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setFilters(draft);
  }
  const filtered = Object.keys(auditQuery(filters)).length > 0;
  return (
    <>
      <h1>Audit log</h1>
      <form onSubmit={apply} className="card inline-form filters" aria-label="Filter the audit log">
        <TextField label="Action" name="action" value={draft.action} onChange={set("action")} hint="Exact (api_key.created) or a kind ending in a dot (member.)." autoComplete="off" />
        <TextField label="Target type" name="target_type" value={draft.target_type} onChange={set("target_type")} hint="e.g. index, api_key, membership." autoComplete="off" />
        <TextField label="Since" name="since" type="datetime-local" value={draft.since} onChange={set("since")} />
        <TextField label="Until" name="until" type="datetime-local" value={draft.until} onChange={set("until")} />
        <button type="submit" className="primary">
          Apply filters
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft(NO_FILTERS);
            setFilters(NO_FILTERS);
          }}
        >
          Clear
        </button>
      </form>
      {list.status === "loading" ? <Loading what="audit events" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the audit events." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-events">
          <h2 id="no-events">{filtered ? "No events match these filters" : "No events yet"}</h2>
          <p>Every change to the tenant — indexes, keys, members — is recorded here with who made it and from where.</p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Audit events">
          <table>
            <caption className="visually-hidden">Audit events</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
                <th scope="col">Source IP</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((e) => (
                <tr key={e.id}>
                  <td>{formatDate(e.created_at)}</td>
                  <td className="row-name">
                    <code>{e.action}</code>
                  </td>
                  <td>{e.actor.label}</td>
                  <td>
                    {e.target.type} {e.target.label}
                  </td>
                  <td>{e.source_ip ?? "—"}</td>
                  <td>
                    <EventDetails event={e} />
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
