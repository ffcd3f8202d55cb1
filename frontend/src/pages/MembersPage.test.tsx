import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { apiError, mockApi, signedIn, TENANT, USER } from "../test/mockApi";
import { renderApp } from "../test/renderApp";

const ME = { user_id: USER.id, email: USER.email, name: "", role: "owner", created_at: "2026-01-01T00:00:00Z" };
const BOB = { user_id: 2, email: "bob@example.com", name: "Bob", role: "member", created_at: "2026-01-02T00:00:00Z" };
const INVITATION = {
  id: "1b8f8c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
  email: "cy@example.com",
  role: "viewer",
  status: "pending",
  invited_by: USER.email,
  expires_at: "2026-02-01T00:00:00Z",
  accepted_at: null,
  created_at: "2026-01-03T00:00:00Z",
};

function membersApi(extra: Record<string, (request: Request) => unknown> = {}) {
  let members = [ME, BOB];
  let invitations = [INVITATION];
  const mock = mockApi({
    ...signedIn([{ ...TENANT, role: "owner" }]),
    "GET /api/v1/tenants/acme/members": () => ({ data: members, next_cursor: null }),
    "GET /api/v1/tenants/acme/invitations": () => ({ data: invitations, next_cursor: null }),
    "PATCH /api/v1/tenants/acme/members/2": async (request) => {
      const { role } = (await request.json()) as { role: string };
      members = [ME, { ...BOB, role }];
      return members[1];
    },
    "DELETE /api/v1/tenants/acme/members/2": () => {
      members = [ME];
      return new Response(null, { status: 204 });
    },
    [`DELETE /api/v1/tenants/acme/invitations/${INVITATION.id}`]: () => {
      invitations = [];
      return new Response(null, { status: 204 });
    },
    ...extra,
  });
  return mock;
}

describe("members", () => {
  it("changes a member's role and removes a member", async () => {
    membersApi();
    renderApp("/t/acme/members");
    const user = userEvent.setup();
    await user.selectOptions(await screen.findByLabelText("Role of bob@example.com"), "admin");
    expect(await screen.findByText("bob@example.com is now admin.")).toBeInTheDocument();
    expect(screen.getByLabelText("Role of bob@example.com")).toHaveValue("admin");
    await user.click(screen.getByRole("button", { name: "Remove bob@example.com" }));
    expect(await screen.findByText("bob@example.com removed.")).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole("row", { name: /bob@example.com/ })).not.toBeInTheDocument());
  });

  it("explains the last-owner rule when it blocks", async () => {
    membersApi({
      "PATCH /api/v1/tenants/acme/members/1": () => apiError(409, "last_owner", "A tenant must keep at least one owner; promote another member first."),
    });
    renderApp("/t/acme/members");
    const user = userEvent.setup();
    await user.selectOptions(await screen.findByLabelText(`Role of ${USER.email}`), "member");
    expect(await screen.findByRole("alert")).toHaveTextContent("last_owner");
    expect(screen.getByRole("note")).toHaveTextContent(/Make another member an owner first/);
    const mine = within(screen.getByRole("region", { name: "Members" })).getByRole("row", { name: new RegExp(USER.email) });
    expect(within(mine).getByRole("button", { name: "Leave tenant" })).toBeInTheDocument();
  });

  it("revokes a pending invitation", async () => {
    membersApi();
    renderApp("/t/acme/members");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Revoke the invitation of cy@example.com" }));
    expect(await screen.findByText("No pending invitations.")).toBeInTheDocument();
  });
});
