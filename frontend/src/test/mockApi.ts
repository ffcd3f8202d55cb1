import { vi } from "vitest";

export type Handler = (request: Request) => unknown | Response | Promise<unknown | Response>;

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export function apiError(status: number, code: string, message: string, details: Record<string, unknown> = {}): Response {
  return json({ error: { code, message, details } }, status);
}

/**
 * Stubs globalThis.fetch with handlers keyed "METHOD /path" (no query string).
 * A handler answers a Response, or a body sent as 200 JSON. Unknown routes answer 404 not_found.
 */
export function mockApi(handlers: Record<string, Handler>) {
  const calls: Request[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    calls.push(request);
    const url = new URL(request.url);
    const handler = handlers[`${request.method} ${url.pathname}`];
    if (!handler) return apiError(404, "not_found", `No mock for ${request.method} ${url.pathname}.`);
    const answer = await handler(request);
    return answer instanceof Response ? answer : json(answer);
  });
  vi.stubGlobal("fetch", fetchMock);
  return { calls, fetchMock };
}

export const USER = { id: 1, email: "ada@example.com", name: "", is_operator: false };

export const TENANT = {
  id: "6f1c7f9e-5a43-4f0e-9c1b-1f2a3b4c5d6e",
  slug: "acme",
  name: "Acme",
  status: "active",
  status_reason: "",
  plan: "free",
  role: "owner",
  payment_state: "current",
  payment_state_since: null as string | null,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
};

/** A signed-in user who belongs to `tenants`, each answering its detail. */
export function signedIn(tenants = [TENANT]): Record<string, Handler> {
  const handlers: Record<string, Handler> = {
    "GET /api/v1/auth/me": () => ({ user: USER, api_key: null }),
    "GET /api/v1/auth/csrf": () => ({ csrf_token: "tok" }),
    "GET /api/v1/tenants": () => ({ data: tenants, next_cursor: null }),
  };
  for (const t of tenants) handlers[`GET /api/v1/tenants/${t.slug}`] = () => t;
  return handlers;
}
