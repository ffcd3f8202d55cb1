import { useCallback } from "react";
import { api, call } from "../api/client";
import { ErrorMessage } from "../components/ErrorMessage";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { formatDate } from "../lib/format";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

export function MembersPage() {
  const { slug } = useTenant();
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/members", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  return (
    <>
      <h1>Members</h1>
      <p className="hint">Owners and admins manage the tenant; members mint read/write keys; viewers only read.</p>
      {list.status === "loading" ? <Loading what="members" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the members." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-members">
          <h2 id="no-members">No members to show</h2>
          <p>Invite people by e-mail with a role; they join when they accept the invitation.</p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Members</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Member since</th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((m) => (
                <tr key={m.user_id}>
                  <td className="row-name">{m.email}</td>
                  <td>{m.name || "—"}</td>
                  <td>{m.role}</td>
                  <td>{formatDate(m.created_at)}</td>
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
