// The console lands a user with several tenants on the one used last.

export const LAST_TENANT_KEY = "vectorplane.lastTenant";

function storage(): Storage | undefined {
  try {
    return globalThis.localStorage;
  } catch {
    return undefined; // storage disabled (privacy mode): the console still works, it just forgets.
  }
}

export function rememberTenant(slug: string): void {
  try {
    storage()?.setItem(LAST_TENANT_KEY, slug);
  } catch {
    // quota or disabled storage: nothing to remember with
  }
}

export function lastTenant(): string | undefined {
  return storage()?.getItem(LAST_TENANT_KEY) ?? undefined;
}

export function forgetTenant(): void {
  storage()?.removeItem(LAST_TENANT_KEY);
}

/**
 * Which tenant to land on: the remembered one if the user still belongs to it,
 * else the first of the list; undefined when the user has none.
 */
export function pickTenant(slugs: readonly string[], remembered: string | undefined = lastTenant()): string | undefined {
  if (remembered && slugs.includes(remembered)) return remembered;
  return slugs[0];
}
