// The playground's short-lived gateway key: kept in memory only (never
// localStorage), minted on first use, again when it is within RENEW_BEFORE_MS of
// its expiry, and again (once per call) when the gateway answers 401.

export interface PlaygroundKey {
  key: string;
  key_id: string;
  expires_at: string;
  index: string;
  host: string;
}

export const RENEW_BEFORE_MS = 30_000;

/** True when `key` is missing, expired, within the renewal window, or its expiry unreadable. */
export function needsRenewal(key: PlaygroundKey | null, now: number): boolean {
  if (!key) return true;
  const expires = new Date(key.expires_at).getTime();
  return Number.isNaN(expires) || expires - now <= RENEW_BEFORE_MS;
}

export class PlaygroundKeys {
  private current: PlaygroundKey | null = null;
  private pending: Promise<PlaygroundKey> | null = null;

  constructor(
    private readonly mint: () => Promise<PlaygroundKey>,
    private readonly now: () => number = Date.now,
  ) {}

  /** A usable key: the one held, or a new one (concurrent callers share one mint). */
  async get(): Promise<PlaygroundKey> {
    if (this.current && !needsRenewal(this.current, this.now())) return this.current;
    return this.renew();
  }

  /** Mints a new key, replacing the one held. */
  renew(): Promise<PlaygroundKey> {
    if (!this.pending) {
      this.pending = this.mint().then(
        (key) => {
          this.current = key;
          this.pending = null;
          return key;
        },
        (cause: unknown) => {
          this.pending = null;
          throw cause;
        },
      );
    }
    return this.pending;
  }

  /** Forgets the held key (the next get() mints one). */
  clear(): void {
    this.current = null;
  }
}

/**
 * Runs `send` with a key; if the gateway answers 401 (expired, revoked), renews
 * the key once and sends again. The second answer is returned as it is.
 */
export async function withKey(keys: PlaygroundKeys, send: (key: PlaygroundKey) => Promise<Response>): Promise<{ response: Response; key: PlaygroundKey }> {
  const first = await keys.get();
  const response = await send(first);
  if (response.status !== 401) return { response, key: first };
  keys.clear();
  const second = await keys.renew();
  return { response: await send(second), key: second };
}
