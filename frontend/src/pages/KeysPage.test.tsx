import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockApi, signedIn, TENANT } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { splitList } from "./KeysPage";

const KEY = {
  id: "0b9c4c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
  name: "per-user",
  prefix: "cd34",
  status: "active",
  scopes: ["read", "write"],
  index_names: ["docs"],
  namespaces: ["eu"],
  row_filter: { user_id: { $eq: "u42" } },
  id_prefix: "u42#",
  expires_at: null,
  revoke_after: null,
  revoked_at: null,
  last_used_at: null,
  rotated_from: null,
  created_at: "2026-01-01T00:00:00Z",
};

describe("splitList", () => {
  it("splits on commas and drops empty items", () => {
    expect(splitList(" docs, faq ,, ")).toEqual(["docs", "faq"]);
    expect(splitList("")).toEqual([]);
  });
});

describe("API keys with restrictions", () => {
  it("mints a key bound to indexes, namespaces and rows, and lists its restrictions", async () => {
    let keys: unknown[] = [];
    const { calls } = mockApi({
      ...signedIn(),
      "GET /api/v1/tenants/acme/api-keys": () => ({ data: keys, next_cursor: null }),
      "POST /api/v1/tenants/acme/api-keys": () => {
        keys = [KEY];
        return { ...KEY, key: "vpk_cd34.secret" };
      },
    });
    renderApp("/t/acme/keys");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Key name"), "per-user");
    await user.click(screen.getByRole("checkbox", { name: "write" }));
    await user.click(screen.getByText("Restrictions (optional)"));
    await user.type(screen.getByLabelText("Only these indexes"), "docs");
    await user.type(screen.getByLabelText("Only these namespaces"), "eu");
    await user.click(screen.getByRole("button", { name: '{"user_id": {"$eq": "u42"}}' }));
    await user.click(screen.getByRole("button", { name: "Mint key" }));
    // A row filter with the write scope needs an id prefix: said on the field, nothing sent.
    expect(await screen.findByText(/needs an ID prefix/)).toBeInTheDocument();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);
    await user.type(screen.getByLabelText("ID prefix"), "u42#");
    await user.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByLabelText("Secret")).toHaveValue("vpk_cd34.secret");
    const post = calls.find((c) => c.method === "POST");
    expect(await post?.json()).toEqual({
      name: "per-user",
      scopes: ["read", "write"],
      index_names: ["docs"],
      namespaces: ["eu"],
      row_filter: { user_id: { $eq: "u42" } },
      id_prefix: "u42#",
    });
    const row = await screen.findByRole("row", { name: /per-user/ });
    expect(within(row).getByText(/indexes: docs; namespaces: eu; rows: \{"user_id":\{"\$eq":"u42"\}\}; ids: u42#/)).toBeInTheDocument();
  });

  it("rotates a key with a grace period and shows the new secret once", async () => {
    let keys: unknown[] = [KEY];
    const { calls } = mockApi({
      ...signedIn(),
      "GET /api/v1/tenants/acme/api-keys": () => ({ data: keys, next_cursor: null }),
      [`POST /api/v1/tenants/acme/api-keys/${KEY.id}/rotate`]: () => {
        const fresh = { ...KEY, id: "1c9c4c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", prefix: "ef56", rotated_from: KEY.id };
        keys = [fresh, { ...KEY, status: "rotating", revoke_after: "2026-01-02T00:00:00Z" }];
        return { ...fresh, key: "vpk_ef56.secret" };
      },
    });
    renderApp("/t/acme/keys");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Rotate per-user" }));
    await user.selectOptions(screen.getByLabelText("Grace period"), "86400");
    await user.click(screen.getByRole("button", { name: "Rotate key" }));
    expect(await screen.findByLabelText("Secret")).toHaveValue("vpk_ef56.secret");
    const post = calls.find((c) => c.method === "POST");
    expect(await post?.json()).toEqual({ grace_seconds: 86400 });
    expect(await screen.findByText(/^revoked /)).toBeInTheDocument();
    expect(screen.getByText("rotating")).toBeInTheDocument();
  });
});

describe("viewers", () => {
  it("see neither the keys link nor any key", async () => {
    const { calls } = mockApi({ ...signedIn([{ ...TENANT, role: "viewer" }]) });
    renderApp("/t/acme/keys");
    expect(await screen.findByText(/Viewers cannot see or mint API keys/)).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "API keys" })).not.toBeInTheDocument();
    expect(calls.some((c) => new URL(c.url).pathname.endsWith("/api-keys"))).toBe(false);
  });
});
