// Django's CSRF protection for session-authenticated unsafe requests: send the
// `csrftoken` cookie's value as X-CSRFToken. GET /api/v1/auth/csrf sets the
// cookie (and answers the token, kept as a fallback when the cookie cannot be
// read).

export const CSRF_COOKIE = "csrftoken";
export const CSRF_HEADER = "X-CSRFToken";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

export function readCookie(name: string, cookies: string = document.cookie): string | undefined {
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value;
      }
    }
  }
  return undefined;
}

let answeredToken: string | undefined;
let pending: Promise<string | undefined> | undefined;

/** Forget the token answered by the csrf endpoint (Django rotates it at sign-in and sign-out). */
export function forgetCsrfToken(): void {
  answeredToken = undefined;
  pending = undefined;
}

/** The token to send: the cookie's value, fetching /api/v1/auth/csrf first when there is none. */
export async function csrfToken(fetchFn: typeof fetch = (input, init) => globalThis.fetch(input, init)): Promise<string | undefined> {
  const fromCookie = readCookie(CSRF_COOKIE);
  if (fromCookie) return fromCookie;
  if (answeredToken) return answeredToken;
  pending ??= (async () => {
    try {
      const response = await fetchFn("/api/v1/auth/csrf", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const body: unknown = await response.json();
        if (typeof body === "object" && body !== null && "csrf_token" in body && typeof body.csrf_token === "string") {
          answeredToken = body.csrf_token;
        }
      }
    } catch {
      // The unsafe request itself will fail and show its error.
    } finally {
      pending = undefined;
    }
    return readCookie(CSRF_COOKIE) ?? answeredToken;
  })();
  return pending;
}

/** Adds X-CSRFToken to an unsafe request (returns the same Request, mutated headers). */
export async function withCsrf(request: Request): Promise<Request> {
  if (!isUnsafeMethod(request.method)) return request;
  const token = await csrfToken();
  if (token) request.headers.set(CSRF_HEADER, token);
  return request;
}
