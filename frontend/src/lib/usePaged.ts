import { useCallback, useState } from "react";
import type { ApiError } from "../api/errors";
import { asApiError, useAsync } from "./useAsync";

export interface Page<T> {
  data: T[];
  next_cursor?: string | null;
}

/** A cursor-paginated list: the first page, then "Load more" appends the next. */
export function usePaged<T>(loadPage: (cursor: string | undefined) => Promise<Page<T>>) {
  const loadFirst = useCallback(() => loadPage(undefined), [loadPage]);
  const first = useAsync(loadFirst);
  const [more, setMore] = useState<{ after: Page<T>; items: T[]; next: string | null } | null>(null);
  const [moreError, setMoreError] = useState<ApiError | undefined>();
  const [loadingMore, setLoadingMore] = useState(false);

  const extra = first.data && more?.after === first.data ? more : null;
  const items = first.data ? [...first.data.data, ...(extra?.items ?? [])] : [];
  const next = extra ? extra.next : (first.data?.next_cursor ?? null);

  async function loadMore() {
    if (!first.data || !next) return;
    const after = first.data;
    setLoadingMore(true);
    setMoreError(undefined);
    try {
      const page = await loadPage(next);
      setMore((prev) => ({ after, items: [...(prev?.after === after ? prev.items : []), ...page.data], next: page.next_cursor ?? null }));
    } catch (cause) {
      setMoreError(asApiError(cause));
    } finally {
      setLoadingMore(false);
    }
  }

  // `answered`: the first page's answer, a new object on each (re)load (e.g. to poll after it).
  return { status: first.status, error: first.error, answered: first.data, items, hasMore: next !== null, loadMore, loadingMore, moreError, reload: first.reload };
}
