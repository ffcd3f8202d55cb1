import { useCallback } from "react";
import { api, call } from "../api/client";
import { ErrorMessage } from "../components/ErrorMessage";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

/** The audit trail, newest first (admins). Filters come in a later slice. */
export function AuditPage() {
  const { slug } = useTenant();
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/audit-events", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  return (
    <>
      <h1>Audit log</h1>
      {list.status === "loading" ? <Loading what="audit events" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the audit events." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-events">
          <h2 id="no-events">No events yet</h2>
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
