import { useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import type { ApiError } from "../api/errors";
import type { Tenant } from "../api/types";
import { useAuth } from "../auth";
import { asApiError } from "../lib/useAsync";
import { ErrorMessage } from "./ErrorMessage";

/** The same section of the other tenant: /t/acme/keys -> /t/globex/keys. */
export function switchTo(pathname: string, from: string, to: string): string {
  const prefix = `/t/${from}`;
  const rest = pathname.startsWith(prefix) ? pathname.slice(prefix.length) : "";
  const section = /^\/(indexes|clusters|keys|members|audit|billing)\b/.exec(rest)?.[0] ?? "";
  return `/t/${to}${section}`;
}

export function AppHeader({ tenants, current }: { tenants?: readonly Tenant[]; current?: string }) {
  const auth = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [error, setError] = useState<ApiError | undefined>();

  async function signOut() {
    try {
      await auth.signOut();
      navigate("/sign-in", { replace: true });
    } catch (cause) {
      setError(asApiError(cause));
    }
  }

  return (
    <header className="app-header">
      <a href="#content" className="skip-link">
        Skip to content
      </a>
      <Link to="/" className="brand">
        Vectorplane
      </Link>
      {tenants && current ? (
        <div className="tenant-switcher">
          <label htmlFor="tenant-switcher">Tenant</label>
          <select id="tenant-switcher" value={current} onChange={(e) => navigate(switchTo(location.pathname, current, e.target.value))}>
            {tenants.map((t) => (
              <option key={t.slug} value={t.slug}>
                {tenants.filter((o) => o.name === t.name).length > 1 ? `${t.name} (${t.slug})` : t.name}
              </option>
            ))}
          </select>
          <Link to="/new-tenant" className="small-link">
            New tenant
          </Link>
        </div>
      ) : null}
      <div className="user">
        {auth.user?.is_operator ? (
          <Link to="/operator" className="small-link">
            Platform
          </Link>
        ) : null}
        {auth.user ? <span className="user-email">{auth.user.email}</span> : null}
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </div>
      <ErrorMessage error={error} />
    </header>
  );
}
