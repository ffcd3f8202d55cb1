import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api, call } from "../api/client";
import type { ApiError } from "../api/errors";
import { useAuth } from "../auth";
import { AppHeader } from "../components/AppHeader";
import { ErrorMessage } from "../components/ErrorMessage";
import { rememberTenant } from "../lib/tenantMemory";
import { asApiError } from "../lib/useAsync";

/** /invitations/accept?token=...: the link an admin hands out (signed-in users only). */
export function AcceptInvitationPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const { user } = useAuth();
  const navigate = useNavigate();
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);

  async function accept() {
    setBusy(true);
    setError(undefined);
    try {
      const joined = await call(api.POST("/api/v1/invitations/accept", { body: { token } }));
      rememberTenant(joined.tenant);
      navigate(`/t/${joined.tenant}`, { replace: true });
    } catch (cause) {
      setError(asApiError(cause));
      setBusy(false);
    }
  }

  return (
    <>
      <AppHeader />
      <main className="auth-page">
        <h1>Accept an invitation</h1>
        <div className="card">
          {token ? (
            <>
              <p>Join the tenant this invitation is for, as {user?.email}.</p>
              <ErrorMessage error={error} />
              <button type="button" className="primary" onClick={accept} disabled={busy}>
                Accept invitation
              </button>
            </>
          ) : (
            <p>This link has no invitation token. Ask for a new invitation link.</p>
          )}
          <p>
            <Link to="/">Back to the console</Link>
          </p>
        </div>
      </main>
    </>
  );
}
