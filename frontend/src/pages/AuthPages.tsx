import { useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router";
import { fieldErrors, type ApiError } from "../api/errors";
import { useAuth } from "../auth";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { asApiError } from "../lib/useAsync";

type Mode = "sign-in" | "sign-up";

function AuthForm({ mode }: { mode: Mode }) {
  const auth = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const from = (location.state as { from?: string } | null)?.from;

  if (auth.user) return <Navigate to={from ?? "/"} replace />;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      if (mode === "sign-in") await auth.signIn(email, password);
      else await auth.signUp(email, password);
      // A new account has no tenant: "/" sends it to the create-tenant form (unless it came
      // from an invitation link, which it goes back to).
      navigate(from ?? "/", { replace: true });
    } catch (cause) {
      setError(asApiError(cause));
      setBusy(false);
    }
  }

  const fields = fieldErrors(error, ["email", "password"]);
  const title = mode === "sign-in" ? "Sign in" : "Sign up";
  return (
    <main className="auth-page">
      <h1>{title} to Vectorplane</h1>
      <form onSubmit={submit} noValidate className="card">
        <ErrorMessage error={error} />
        <TextField label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fields.email} />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete={mode === "sign-in" ? "current-password" : "new-password"}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fields.password}
          hint={mode === "sign-up" ? "At least 8 characters." : undefined}
        />
        <button type="submit" className="primary" disabled={busy}>
          {title}
        </button>
      </form>
      <p>
        {mode === "sign-in" ? (
          <>
            No account?{" "}
            <Link to="/sign-up" state={location.state}>
              Sign up
            </Link>
          </>
        ) : (
          <>
            Have an account?{" "}
            <Link to="/sign-in" state={location.state}>
              Sign in instead
            </Link>
          </>
        )}
      </p>
    </main>
  );
}

export function SignInPage() {
  return <AuthForm mode="sign-in" />;
}

export function SignUpPage() {
  return <AuthForm mode="sign-up" />;
}
