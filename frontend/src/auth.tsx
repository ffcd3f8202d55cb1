import { createContext, use, useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, call } from "./api/client";
import { forgetCsrfToken } from "./api/csrf";
import { ApiError } from "./api/errors";
import type { User } from "./api/types";
import { asApiError } from "./lib/useAsync";

interface Auth {
  /** undefined while the session is being checked; null when signed out. */
  user: User | null | undefined;
  /** Why the session could not be checked (not "signed out": a real failure). */
  error: ApiError | undefined;
  signIn(email: string, password: string): Promise<User>;
  signUp(email: string, password: string): Promise<User>;
  signOut(): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = use(AuthContext);
  if (!auth) throw new Error("useAuth outside <AuthProvider>");
  return auth;
}

async function fetchMe(): Promise<User | null> {
  try {
    const me = await call(api.GET("/api/v1/auth/me"));
    return me.user ?? null;
  } catch (cause) {
    if (cause instanceof ApiError && cause.status === 401) return null;
    throw cause;
  }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);

  useEffect(() => {
    let live = true;
    fetchMe().then(
      (me) => live && setUser(me),
      (cause: unknown) => {
        if (!live) return;
        setError(asApiError(cause));
        setUser(null);
      },
    );
    return () => {
      live = false;
    };
  }, []);

  const signIn = useCallback(async (email: string, password: string) => {
    const me = await call(api.POST("/api/v1/auth/login", { body: { email, password } }));
    forgetCsrfToken(); // Django rotates the token at sign-in
    setError(undefined);
    setUser(me);
    return me;
  }, []);

  const signUp = useCallback(async (email: string, password: string) => {
    const me = await call(api.POST("/api/v1/auth/signup", { body: { email, password } }));
    forgetCsrfToken();
    setError(undefined);
    setUser(me);
    return me;
  }, []);

  const signOut = useCallback(async () => {
    await call(api.POST("/api/v1/auth/logout"));
    forgetCsrfToken();
    setUser(null);
  }, []);

  const value = useMemo(() => ({ user, error, signIn, signUp, signOut }), [user, error, signIn, signUp, signOut]);
  return <AuthContext value={value}>{children}</AuthContext>;
}
