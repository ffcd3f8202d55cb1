import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockApi, signedIn, TENANT } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { auditQuery } from "./AuditPage";

const EVENT = {
  id: 7,
  action: "api_key.created",
  actor: { type: "user", label: "ada@example.com", user_id: 1, api_key_id: null, via_token: false },
  target: { type: "api_key", id: "0b9c4c1e", label: "ingest" },
  source_ip: "127.0.0.1",
  user_agent: "Mozilla/5.0 test",
  details: { scopes: ["read", "write"] },
  created_at: "2026-01-01T00:00:00Z",
};

describe("auditQuery", () => {
  it("leaves out empty filters and sends times as ISO 8601", () => {
    expect(auditQuery({ action: " member. ", target_type: "", since: "", until: "" })).toEqual({ action: "member." });
    const q = auditQuery({ action: "", target_type: "index", since: "2026-01-01T10:00", until: "not a date" });
    expect(q.target_type).toBe("index");
    expect(q.since).toBe(new Date("2026-01-01T10:00").toISOString());
    expect(q.until).toBeUndefined();
  });
});

describe("the audit log", () => {
  it("filters through the API and shows an event's details", async () => {
    const { calls } = mockApi({
      ...signedIn([{ ...TENANT, role: "owner" }]),
      "GET /api/v1/tenants/acme/audit-events": (request) => {
        const action = new URL(request.url).searchParams.get("action");
        return { data: action === "member." ? [] : [EVENT], next_cursor: null };
      },
    });
    renderApp("/t/acme/audit");
    const user = userEvent.setup();
    await user.click(await screen.findByText("Details of event 7"));
    expect(screen.getByText("Mozilla/5.0 test")).toBeInTheDocument();
    expect(screen.getByText(/"scopes"/)).toBeInTheDocument();
    await user.type(screen.getByLabelText("Action"), "member.");
    await user.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(await screen.findByRole("heading", { name: "No events match these filters" })).toBeInTheDocument();
    const last = calls.filter((c) => new URL(c.url).pathname.endsWith("/audit-events")).at(-1);
    expect(new URL(last?.url ?? "http://x").searchParams.get("action")).toBe("member.");
  });
});
