// Every API error is {"error": {"code", "message", "details"}} (docs/ERRORS.md).
// ApiError carries it to the UI; anything else (a proxy's HTML page, a network
// failure) is turned into the same shape so that every error shows a message
// and a code.

export type FieldErrors = Record<string, string>;

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Builds an ApiError from a response status and its parsed body (or anything else). */
export function toApiError(status: number, body: unknown): ApiError {
  if (isRecord(body) && isRecord(body.error)) {
    const { code, message, details } = body.error;
    if (typeof code === "string" && typeof message === "string") {
      return new ApiError(status, code, message, isRecord(details) ? details : {});
    }
  }
  return new ApiError(status, `http_${status}`, `The server answered ${status} without an error body.`);
}

export function networkError(cause: unknown): ApiError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ApiError(0, "network_error", `The control plane could not be reached (${why}).`);
}

function messagesOf(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    const texts = value
      .map((item) => (isRecord(item) && typeof item.message === "string" ? item.message : typeof item === "string" ? item : ""))
      .filter(Boolean);
    return texts.length ? texts.join(" ") : undefined;
  }
  return undefined;
}

function flatten(fields: Record<string, unknown>, prefix: string, out: FieldErrors): void {
  for (const [name, value] of Object.entries(fields)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const text = messagesOf(value);
    if (text) out[path] = text;
    else if (isRecord(value)) flatten(value, path, out);
  }
}

/**
 * The per-field messages of an error, keyed by field name (nested fields as
 * "a.b"). `validation_error` names them in details.fields; the data plane in
 * details.field; other codes (index_exists, plan_limit, dimension_too_large)
 * name the offending field as a key of details, which is matched against the
 * form's `formFields`.
 */
export function fieldErrors(error: unknown, formFields: readonly string[] = []): FieldErrors {
  if (!(error instanceof ApiError)) return {};
  const out: FieldErrors = {};
  const { fields, field } = error.details;
  if (isRecord(fields)) flatten(fields, "", out);
  if (typeof field === "string") out[field] = error.message;
  if (Object.keys(out).length === 0) {
    for (const name of formFields) {
      if (name in error.details) out[name] = error.message;
    }
  }
  return out;
}
