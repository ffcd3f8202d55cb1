import { describe, expect, it, vi } from "vitest";
import { needsRenewal, PlaygroundKeys, RENEW_BEFORE_MS, withKey, type PlaygroundKey } from "./playgroundKey";

const T0 = Date.parse("2026-01-01T00:00:00Z");

function keyExpiringAt(ms: number, n = 1): PlaygroundKey {
  return { key: `vpk_test_${n}`, key_id: `id-${n}`, expires_at: new Date(ms).toISOString(), index: "docs", host: "http://gw/v1/indexes/docs" };
}

describe("the expiry window", () => {
  it("renews a missing key, and one within 30 s of its expiry", () => {
    expect(RENEW_BEFORE_MS).toBe(30_000);
    expect(needsRenewal(null, T0)).toBe(true);
    expect(needsRenewal(keyExpiringAt(T0 + 31_000), T0)).toBe(false);
    expect(needsRenewal(keyExpiringAt(T0 + 30_000), T0)).toBe(true);
    expect(needsRenewal(keyExpiringAt(T0 - 1), T0)).toBe(true);
    expect(needsRenewal({ ...keyExpiringAt(T0), expires_at: "soon" }, T0)).toBe(true);
  });

  it("keeps the key until the window, then mints a new one", async () => {
    let now = T0;
    let n = 0;
    const mint = vi.fn(async () => keyExpiringAt(T0 + 600_000, ++n));
    const keys = new PlaygroundKeys(mint, () => now);
    expect((await keys.get()).key).toBe("vpk_test_1");
    now = T0 + 500_000;
    expect((await keys.get()).key).toBe("vpk_test_1");
    expect(mint).toHaveBeenCalledTimes(1);
    now = T0 + 575_000; // 25 s before expiry
    expect((await keys.get()).key).toBe("vpk_test_2");
    expect(mint).toHaveBeenCalledTimes(2);
  });

  it("shares one mint between concurrent callers, and mints again after a failure", async () => {
    let n = 0;
    const mint = vi.fn(async () => {
      n += 1;
      if (n === 1) throw new Error("index_not_ready");
      return keyExpiringAt(T0 + 600_000, n);
    });
    const keys = new PlaygroundKeys(mint, () => T0);
    await expect(keys.get()).rejects.toThrow("index_not_ready");
    const [a, b] = await Promise.all([keys.get(), keys.get()]);
    expect(a).toBe(b);
    expect(mint).toHaveBeenCalledTimes(2);
  });
});

describe("a 401 from the gateway", () => {
  it("renews the key once and sends again", async () => {
    let n = 0;
    const keys = new PlaygroundKeys(async () => keyExpiringAt(T0 + 600_000, ++n), () => T0);
    const send = vi.fn(async (key: PlaygroundKey) => new Response("{}", { status: key.key === "vpk_test_1" ? 401 : 200 }));
    const { response, key } = await withKey(keys, send);
    expect(response.status).toBe(200);
    expect(key.key).toBe("vpk_test_2");
    expect(send.mock.calls.map(([k]) => k.key)).toEqual(["vpk_test_1", "vpk_test_2"]);
    // The renewed key is kept.
    expect((await keys.get()).key).toBe("vpk_test_2");
  });

  it("answers the second 401 as it is (no loop)", async () => {
    let n = 0;
    const mint = vi.fn(async () => keyExpiringAt(T0 + 600_000, ++n));
    const keys = new PlaygroundKeys(mint, () => T0);
    const send = vi.fn(async () => new Response('{"error": {"code": "api_key_revoked", "message": "revoked", "details": {}}}', { status: 401 }));
    const { response } = await withKey(keys, send);
    expect(response.status).toBe(401);
    expect(send).toHaveBeenCalledTimes(2);
    expect(mint).toHaveBeenCalledTimes(2);
  });

  it("does not renew on other answers (403 is shown, not retried)", async () => {
    const mint = vi.fn(async () => keyExpiringAt(T0 + 600_000));
    const keys = new PlaygroundKeys(mint, () => T0);
    const send = vi.fn(async () => new Response("{}", { status: 403 }));
    expect((await withKey(keys, send)).response.status).toBe(403);
    expect(send).toHaveBeenCalledTimes(1);
    expect(mint).toHaveBeenCalledTimes(1);
  });
});
