import type { ApiError } from "../api/errors";
import { ErrorMessage } from "./ErrorMessage";

export function LoadMore({ hasMore, loading, error, onClick }: { hasMore: boolean; loading: boolean; error?: ApiError | undefined; onClick: () => void }) {
  return (
    <>
      <ErrorMessage error={error} />
      {hasMore ? (
        <button type="button" onClick={onClick} disabled={loading}>
          {loading ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </>
  );
}
