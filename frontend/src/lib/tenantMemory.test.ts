import { describe, expect, it } from "vitest";
import { forgetTenant, LAST_TENANT_KEY, lastTenant, pickTenant, rememberTenant } from "./tenantMemory";

describe("tenant memory", () => {
  it("remembers the last tenant used in localStorage", () => {
    expect(lastTenant()).toBeUndefined();
    rememberTenant("acme");
    rememberTenant("globex");
    expect(localStorage.getItem(LAST_TENANT_KEY)).toBe("globex");
    expect(lastTenant()).toBe("globex");
    forgetTenant();
    expect(lastTenant()).toBeUndefined();
  });

  it("lands on the remembered tenant while the user still belongs to it", () => {
    expect(pickTenant(["acme", "globex"], "globex")).toBe("globex");
    rememberTenant("globex");
    expect(pickTenant(["acme", "globex"])).toBe("globex");
  });

  it("falls back to the first tenant, or none", () => {
    expect(pickTenant(["acme", "globex"], "gone")).toBe("acme");
    expect(pickTenant(["acme"], undefined)).toBe("acme");
    expect(pickTenant([], "acme")).toBeUndefined();
  });
});
