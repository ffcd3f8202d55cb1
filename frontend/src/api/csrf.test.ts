import { beforeEach, describe, expect, it } from "vitest";
import { json, mockApi } from "../test/mockApi";
import { api } from "./client";
import { CSRF_HEADER, csrfToken, forgetCsrfToken, isUnsafeMethod, readCookie, withCsrf } from "./csrf";

beforeEach(() => forgetCsrfToken());

describe("csrf", () => {
  it("knows which methods are unsafe", () => {
    expect(["GET", "head", "OPTIONS", "TRACE"].map(isUnsafeMethod)).toEqual([false, false, false, false]);
    expect(["POST", "put", "PATCH", "DELETE"].map(isUnsafeMethod)).toEqual([true, true, true, true]);
  });

  it("reads one cookie among several", () => {
    expect(readCookie("csrftoken", "sessionid=abc; csrftoken=t0k%3D; other=1")).toBe("t0k=");
    expect(readCookie("csrftoken", "xcsrftoken=no")).toBeUndefined();
    expect(readCookie("csrftoken", "")).toBeUndefined();
  });

  it("sends the cookie's value as X-CSRFToken on unsafe requests only", async () => {
    document.cookie = "csrftoken=from-cookie; path=/";
    const post = await withCsrf(new Request("http://localhost/api/v1/auth/logout", { method: "POST" }));
    expect(post.headers.get(CSRF_HEADER)).toBe("from-cookie");
    const get = await withCsrf(new Request("http://localhost/api/v1/auth/me"));
    expect(get.headers.get(CSRF_HEADER)).toBeNull();
  });

  it("fetches /api/v1/auth/csrf first when there is no cookie, once", async () => {
    const { calls } = mockApi({ "GET /api/v1/auth/csrf": () => json({ csrf_token: "answered" }) });
    const [a, b] = await Promise.all([csrfToken(), csrfToken()]);
    expect(a).toBe("answered");
    expect(b).toBe("answered");
    expect(calls.filter((r) => r.url.endsWith("/api/v1/auth/csrf"))).toHaveLength(1);
  });

  it("is applied by the generated client", async () => {
    document.cookie = "csrftoken=abc; path=/";
    const { calls } = mockApi({ "POST /api/v1/tenants": () => json({}, 201), "GET /api/v1/tenants": () => ({ data: [], next_cursor: null }) });
    await api.POST("/api/v1/tenants", { body: { name: "Acme" } });
    await api.GET("/api/v1/tenants");
    const [post, get] = calls;
    expect(post?.method).toBe("POST");
    expect(post?.headers.get(CSRF_HEADER)).toBe("abc");
    expect(post?.credentials).toBe("same-origin");
    expect(get?.headers.get(CSRF_HEADER)).toBeNull();
  });
});
