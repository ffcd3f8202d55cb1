import { useCallback, useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError } from "../api/errors";
import type { Invitation, InvitationCreated, Member, Role } from "../api/types";
import { useNavigate } from "react-router";
import { useAuth } from "../auth";
import { CopyField } from "../components/CopyField";
import { ErrorMessage } from "../components/ErrorMessage";
import { SelectField, TextField } from "../components/Field";
import { Loading } from "../components/Loading";
import { LoadMore } from "../components/LoadMore";
import { BASENAME } from "../lib/basename";
import { formatDate } from "../lib/format";
import { asApiError } from "../lib/useAsync";
import { usePaged } from "../lib/usePaged";
import { useTenant } from "./TenantLayout";

const ROLES: readonly Role[] = ["viewer", "member", "admin", "owner"];
const canManage = (role: string | null) => role === "owner" || role === "admin";

/** Where the invited person accepts: the console page that posts the token. */
export function invitationLink(token: string, origin: string = window.location.origin): string {
  return `${origin}${BASENAME}/invitations/accept?token=${encodeURIComponent(token)}`;
}

function InviteForm({ slug, onInvited }: { slug: string; onInvited: (invitation: InvitationCreated) => void }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const invitation = await call(api.POST("/api/v1/tenants/{tenant_slug}/invitations", { params: { path: { tenant_slug: slug } }, body: { email, role } }));
      setEmail("");
      onInvited(invitation);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = fieldErrors(error, ["email", "role"]);
  return (
    <form onSubmit={submit} noValidate className="card inline-form" aria-labelledby="invite-heading">
      <h2 id="invite-heading">Invite someone</h2>
      <ErrorMessage error={error} />
      <TextField label="Email" type="email" name="email" value={email} onChange={(e) => setEmail(e.target.value)} error={fields.email} autoComplete="off" />
      <SelectField label="Role" name="role" value={role} onChange={(e) => setRole(e.target.value as Role)} error={fields.role}>
        {ROLES.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </SelectField>
      <button type="submit" className="primary" disabled={busy}>
        Invite
      </button>
    </form>
  );
}

/** What the last-owner rule means, said where it blocks (the API's `last_owner`). */
export function LastOwnerHelp({ error }: { error: ApiError | undefined }) {
  if (error?.code !== "last_owner") return null;
  return (
    <p role="note" className="warning">
      Every tenant keeps at least one owner, so that someone can always manage its members, keys and billing. Make another member an owner first; then this owner can be changed, removed or leave.
    </p>
  );
}

function RevokeInvitation({ slug, invitation, onDone }: { slug: string; invitation: Invitation; onDone: (error?: ApiError) => void }) {
  const [busy, setBusy] = useState(false);
  async function revoke() {
    setBusy(true);
    try {
      await call(api.DELETE("/api/v1/tenants/{tenant_slug}/invitations/{invitation_id}", { params: { path: { tenant_slug: slug, invitation_id: invitation.id } } }));
      onDone();
    } catch (cause) {
      onDone(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }
  return (
    <button type="button" className="danger-link" onClick={revoke} disabled={busy} aria-label={`Revoke the invitation of ${invitation.email}`}>
      Revoke
    </button>
  );
}

function MemberActions({ slug, member, isSelf, canManage: manage, onChanged }: { slug: string; member: Member; isSelf: boolean; canManage: boolean; onChanged: (outcome: { error?: ApiError; notice?: string; left?: boolean }) => void }) {
  const [busy, setBusy] = useState(false);
  const path = { tenant_slug: slug, user_id: member.user_id };
  async function run(action: () => Promise<unknown>, notice: string, left = false) {
    setBusy(true);
    try {
      await action();
      onChanged({ notice, left });
    } catch (cause) {
      onChanged({ error: asApiError(cause) });
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="row-actions">
      {manage ? (
        <>
          <label htmlFor={`role-${member.user_id}`} className="visually-hidden">
            Role of {member.email}
          </label>
          <select
            id={`role-${member.user_id}`}
            value={member.role}
            disabled={busy}
            onChange={(e) => {
              const role = e.target.value as Role;
              void run(() => call(api.PATCH("/api/v1/tenants/{tenant_slug}/members/{user_id}", { params: { path }, body: { role } })), `${member.email} is now ${role}.`);
            }}
          >
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </>
      ) : null}
      {isSelf ? (
        <button type="button" className="danger-link" disabled={busy} onClick={() => void run(() => call(api.DELETE("/api/v1/tenants/{tenant_slug}/members/{user_id}", { params: { path } })), "You left the tenant.", true)}>
          Leave tenant
        </button>
      ) : manage ? (
        <button type="button" className="danger-link" disabled={busy} aria-label={`Remove ${member.email}`} onClick={() => void run(() => call(api.DELETE("/api/v1/tenants/{tenant_slug}/members/{user_id}", { params: { path } })), `${member.email} removed.`)}>
          Remove
        </button>
      ) : null}
    </div>
  );
}

function Invitations({ slug }: { slug: string }) {
  const loadPage = useCallback(
    (cursor: string | undefined) =>
      call(api.GET("/api/v1/tenants/{tenant_slug}/invitations", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  const [error, setError] = useState<ApiError | undefined>();
  const pending = list.items.filter((i) => i.status === "pending");
  return (
    <section aria-labelledby="invitations-heading">
      <h2 id="invitations-heading">Pending invitations</h2>
      <ErrorMessage error={error} />
      {list.status === "loading" ? <Loading what="invitations" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the invitations." /> : null}
      {list.status === "ready" && pending.length === 0 ? <p className="empty">No pending invitations.</p> : null}
      {pending.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Pending invitations">
          <table>
            <caption className="visually-hidden">Pending invitations</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Invited by</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {pending.map((i) => (
                <tr key={i.id}>
                  <td className="row-name">{i.email}</td>
                  <td>{i.role}</td>
                  <td>{i.invited_by ?? "—"}</td>
                  <td>{formatDate(i.expires_at)}</td>
                  <td>
                    <RevokeInvitation
                      slug={slug}
                      invitation={i}
                      onDone={(problem) => {
                        setError(problem);
                        if (!problem) list.reload();
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} error={list.moreError} onClick={list.loadMore} />
    </section>
  );
}

export function MembersPage() {
  const tenant = useTenant();
  const slug = tenant.slug;
  const loadPage = useCallback(
    (cursor: string | undefined) => call(api.GET("/api/v1/tenants/{tenant_slug}/members", { params: { path: { tenant_slug: slug }, query: { limit: 50, ...(cursor ? { cursor } : {}) } } })),
    [slug],
  );
  const list = usePaged(loadPage);
  const [invited, setInvited] = useState<InvitationCreated | null>(null);
  const [generation, setGeneration] = useState(0);
  const admin = canManage(tenant.role);
  const { user } = useAuth();
  const navigate = useNavigate();
  const [actionError, setActionError] = useState<ApiError | undefined>();
  const [notice, setNotice] = useState("");

  return (
    <>
      <h1>Members</h1>
      <p className="hint">Owners and admins manage the tenant; members mint read/write keys; viewers only read.</p>
      {admin ? (
        invited ? (
          <section className="card" aria-labelledby="invited-heading">
            <h2 id="invited-heading">
              {invited.email} invited as {invited.role}
            </h2>
            <p>No e-mail is sent: give this link to the person. It is shown only once; they accept it signed in with {invited.email}.</p>
            <CopyField label="Invitation link" value={invitationLink(invited.token)} />
            <button type="button" onClick={() => setInvited(null)}>
              Done
            </button>
          </section>
        ) : (
          <InviteForm
            slug={slug}
            onInvited={(invitation) => {
              setInvited(invitation);
              setGeneration((g) => g + 1);
            }}
          />
        )
      ) : null}
      <p role="status" aria-live="polite" className="notice">
        {notice}
      </p>
      <ErrorMessage error={actionError} />
      <LastOwnerHelp error={actionError} />
      {list.status === "loading" ? <Loading what="members" /> : null}
      {list.status === "error" ? <ErrorMessage error={list.error} title="Could not list the members." /> : null}
      {list.status === "ready" && list.items.length === 0 ? (
        <section className="empty" aria-labelledby="no-members">
          <h2 id="no-members">No members to show</h2>
          <p>Invite people by e-mail with a role; they join when they accept the invitation.</p>
        </section>
      ) : null}
      {list.items.length > 0 ? (
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Members">
          <table>
            <caption className="visually-hidden">Members</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Member since</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.items.map((m) => (
                <tr key={m.user_id}>
                  <td className="row-name">{m.email}</td>
                  <td>{m.name || "—"}</td>
                  <td>{m.role}</td>
                  <td>{formatDate(m.created_at)}</td>
                  <td>
                    <MemberActions
                      slug={slug}
                      member={m}
                      isSelf={user?.id === m.user_id}
                      canManage={admin}
                      onChanged={({ error, notice: said, left }) => {
                        setActionError(error);
                        setNotice(said ?? "");
                        if (left) navigate("/", { replace: true });
                        else if (!error) list.reload();
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} error={list.moreError} onClick={list.loadMore} />
      {admin ? <Invitations key={generation} slug={slug} /> : null}
    </>
  );
}
