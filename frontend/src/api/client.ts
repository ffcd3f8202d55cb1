import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import { withCsrf } from "./csrf";
import { ApiError, networkError, toApiError } from "./errors";

export type { paths, components } from "./schema";

const csrfMiddleware: Middleware = {
  async onRequest({ request }) {
    return withCsrf(request);
  },
};

/** The typed client of the management API (generated from docs/openapi.yaml). Same origin, session cookie. */
export const api = createClient<paths>({
  baseUrl: "",
  credentials: "same-origin",
  headers: { Accept: "application/json" },
  // Late-bound so that tests can stub globalThis.fetch.
  fetch: (request: Request) => globalThis.fetch(request),
});
api.use(csrfMiddleware);

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Awaits an openapi-fetch call and returns its data, or throws an ApiError. */
export async function call<T>(pending: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await pending;
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw networkError(cause);
  }
  if (!result.response.ok || result.error !== undefined) {
    throw toApiError(result.response.status, result.error);
  }
  return result.data as T;
}
