import { useCallback, useEffect, useState } from "react";
import { ApiError, networkError } from "../api/errors";

export type AsyncState<T> =
  | { status: "loading"; data?: undefined; error?: undefined }
  | { status: "error"; data?: undefined; error: ApiError }
  | { status: "ready"; data: T; error?: undefined };

export function asApiError(cause: unknown): ApiError {
  return cause instanceof ApiError ? cause : networkError(cause);
}

interface Result<T> {
  load: () => Promise<T>;
  generation: number;
  state: AsyncState<T>;
}

/**
 * Runs `load` (wrap it in useCallback: a new function is a new request) and
 * again after `reload()`; while reloading, the previous answer stays shown.
 */
export function useAsync<T>(load: () => Promise<T>): AsyncState<T> & { reload: () => void } {
  const [generation, setGeneration] = useState(0);
  const [result, setResult] = useState<Result<T> | null>(null);

  useEffect(() => {
    let live = true;
    load().then(
      (data) => {
        if (live) setResult({ load, generation, state: { status: "ready", data } });
      },
      (cause: unknown) => {
        if (live) setResult({ load, generation, state: { status: "error", error: asApiError(cause) } });
      },
    );
    return () => {
      live = false;
    };
  }, [load, generation]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  // An answer for another request (other tenant, other page) is not shown.
  const state: AsyncState<T> = result && result.load === load ? result.state : { status: "loading" };
  return { ...state, reload };
}
