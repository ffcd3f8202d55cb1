import type { ApiError } from "../api/errors";

/** An API error as the user sees it: its message and its stable code. */
export function ErrorMessage({ error, title }: { error: ApiError | undefined | null; title?: string }) {
  if (!error) return null;
  return (
    <div role="alert" className="error">
      {title ? <strong>{title} </strong> : null}
      <span>{error.message}</span> <code className="error-code">{error.code}</code>
    </div>
  );
}
