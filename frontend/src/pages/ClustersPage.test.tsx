import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { apiError, mockApi, signedIn, TENANT, type Handler } from "../test/mockApi";
import { renderApp } from "../test/renderApp";
import { POLL_MS, validateCluster } from "./ClustersPage";

const PRO = { ...TENANT, plan: "pro" };

const SIZES = {
  data: [
    { slug: "xs", cpu: "500m", memory: "1Gi", storage: "10Gi", description: "0.5 vCPU, 1 GiB RAM, 10 GiB disk", allowed: true },
    { slug: "s", cpu: "1", memory: "4Gi", storage: "50Gi", description: "1 vCPU, 4 GiB RAM, 50 GiB disk", allowed: true },
    { slug: "xl", cpu: "8", memory: "32Gi", storage: "1Ti", description: "8 vCPU, 32 GiB RAM, 1 TiB disk", allowed: false },
  ],
};

const CLUSTER = {
  id: "2c9c4c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
  name: "main",
  engine: "pgvector",
  driver: "local",
  size: "xs",
  replicas: 1,
  status: "ready",
  status_message: "",
  generation: 1,
  observed_generation: 1,
  indexes: ["docs"],
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:01:00Z",
  ready_at: "2026-01-01T00:01:00Z",
};
const DETAIL = { ...CLUSTER, last_error: "", last_error_at: null };

function event(id: number, from_status: string, to_status: string, message = "") {
  return { id, from_status, to_status, generation: 1, size: "xs", replicas: 1, message, at: `2026-01-01T00:0${id}:00Z` };
}

/** The "from → to" column of the history, top to bottom. */
function changes(): (string | null | undefined)[] {
  const history = screen.getByRole("region", { name: "Status changes" });
  return within(history)
    .getAllByRole("row")
    .slice(1)
    .map((r) => within(r).getAllByRole("cell")[1]?.textContent);
}

function clustersApi(extra: Record<string, Handler> = {}, tenant = PRO) {
  return mockApi({
    ...signedIn([tenant]),
    "GET /api/v1/tenants/acme/clusters": () => ({ data: [], next_cursor: null }),
    "GET /api/v1/tenants/acme/cluster-sizes": () => SIZES,
    ...extra,
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe("validateCluster", () => {
  it("checks the name and the replicas as the API does", () => {
    expect(validateCluster("main", "1")).toEqual({});
    expect(Object.keys(validateCluster("Bad_Name", "0"))).toEqual(["name", "replicas"]);
    expect(Object.keys(validateCluster(null, "11"))).toEqual(["replicas"]);
  });
});

describe("the clusters list", () => {
  it("explains what a dedicated cluster is when there is none", async () => {
    clustersApi();
    renderApp("/t/acme/clusters");
    expect(await screen.findByRole("heading", { name: "No dedicated clusters yet" })).toBeInTheDocument();
    expect(screen.getByText(/runs only this tenant's indexes/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Clusters" })).toHaveAttribute("aria-current", "page");
  });

  it("lists each cluster with its engine, size, replicas, status and status message", async () => {
    const failed = { ...CLUSTER, id: "3c9c4c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", name: "vectors", engine: "qdrant", size: "s", replicas: 3, status: "failed", status_message: "Qdrant did not start" };
    clustersApi({ "GET /api/v1/tenants/acme/clusters": () => ({ data: [failed, CLUSTER], next_cursor: null }) });
    renderApp("/t/acme/clusters");
    const row = await screen.findByRole("row", { name: /vectors/ });
    expect(within(row).getByRole("link", { name: "vectors" })).toHaveAttribute("href", "/t/acme/clusters/vectors");
    for (const text of ["qdrant", "s", "3", "failed"]) expect(within(row).getByText(text)).toBeInTheDocument();
    expect(within(row).getByText(/Qdrant did not start/)).toBeInTheDocument();
    expect(within(screen.getByRole("row", { name: /main/ })).getByText("ready")).toBeInTheDocument();
  });

  it("offers the plan's sizes with their resources and creates a cluster", async () => {
    let clusters: unknown[] = [];
    const { calls } = clustersApi({
      "GET /api/v1/tenants/acme/clusters": () => ({ data: clusters, next_cursor: null }),
      "POST /api/v1/tenants/acme/clusters": () => {
        clusters = [{ ...CLUSTER, status: "ready" }];
        return { ...CLUSTER, status: "pending" };
      },
    });
    renderApp("/t/acme/clusters");
    const user = userEvent.setup();
    const size = await screen.findByLabelText("Size");
    expect(within(size).getByRole("option", { name: /^xl .*not in your plan/ })).toBeDisabled();
    expect(size).toHaveValue("xs");
    expect(size).toHaveAccessibleDescription("CPU 500m, memory 1Gi, storage 10Gi per replica.");
    await user.selectOptions(size, "s");
    expect(size).toHaveAccessibleDescription("CPU 1, memory 4Gi, storage 50Gi per replica.");
    await user.type(screen.getByLabelText("Name"), "main");
    await user.click(screen.getByRole("button", { name: "Create cluster" }));
    expect(await screen.findByText(/Cluster main ordered/)).toBeInTheDocument();
    expect(await screen.findByRole("row", { name: /main/ })).toBeInTheDocument();
    const post = calls.find((c) => c.method === "POST");
    expect(await post?.json()).toEqual({ name: "main", engine: "pgvector", size: "s", replicas: 1 });
  });

  it("shows the API's refusal on the field it concerns", async () => {
    clustersApi({
      "POST /api/v1/tenants/acme/clusters": () => apiError(403, "plan_limit", "Your plan allows 1 to 3 replicas.", { replicas: 5, max_replicas: 3 }),
    });
    renderApp("/t/acme/clusters");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Name"), "main");
    await user.selectOptions(screen.getByLabelText("Engine"), "qdrant");
    const replicas = screen.getByLabelText("Replicas");
    await user.clear(replicas);
    await user.type(replicas, "5");
    await user.click(screen.getByRole("button", { name: "Create cluster" }));
    await waitFor(() => expect(screen.getByLabelText("Replicas")).toHaveAccessibleDescription(/Your plan allows 1 to 3 replicas\./));
    expect(screen.getByLabelText("Replicas")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Name")).not.toHaveAttribute("aria-invalid");
    expect(screen.getByRole("alert")).toHaveTextContent("plan_limit");
  });

  it("shows a validation error's field message, and checks the name before sending", async () => {
    const { calls } = clustersApi({
      "POST /api/v1/tenants/acme/clusters": () => apiError(409, "cluster_exists", "A cluster named 'main' exists.", { name: "main" }),
    });
    renderApp("/t/acme/clusters");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Name"), "Main!");
    await user.click(screen.getByRole("button", { name: "Create cluster" }));
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(calls.some((c) => c.method === "POST")).toBe(false);
    await user.clear(screen.getByLabelText("Name"));
    await user.type(screen.getByLabelText("Name"), "main");
    await user.click(screen.getByRole("button", { name: "Create cluster" }));
    await waitFor(() => expect(screen.getByLabelText("Name")).toHaveAccessibleDescription(/A cluster named 'main' exists\./));
    expect(screen.getByRole("alert")).toHaveTextContent("cluster_exists");
  });

  it("says when the plan has no dedicated clusters instead of offering the form", async () => {
    clustersApi({ "GET /api/v1/tenants/acme/cluster-sizes": () => ({ data: SIZES.data.map((s) => ({ ...s, allowed: false })) }) }, TENANT);
    renderApp("/t/acme/clusters");
    expect(await screen.findByText(/plan does not include dedicated clusters/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Create cluster" })).not.toBeInTheDocument();
  });

  it("refreshes while a cluster is being provisioned", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let status = "provisioning";
    const { calls } = clustersApi({ "GET /api/v1/tenants/acme/clusters": () => ({ data: [{ ...CLUSTER, status }], next_cursor: null }) });
    renderApp("/t/acme/clusters");
    const row = await screen.findByRole("row", { name: /main/ });
    expect(within(row).getByText("provisioning")).toBeInTheDocument();
    status = "ready";
    await vi.advanceTimersByTimeAsync(POLL_MS);
    await waitFor(() => expect(within(screen.getByRole("row", { name: /main/ })).getByText("ready")).toBeInTheDocument());
    const lists = () => calls.filter((c) => new URL(c.url).pathname === "/api/v1/tenants/acme/clusters").length;
    const after = lists();
    await vi.advanceTimersByTimeAsync(POLL_MS * 2);
    expect(lists()).toBe(after); // ready: no more polling
  });
});

describe("viewers and members", () => {
  it("see the clusters but no create form", async () => {
    const { calls } = clustersApi({ "GET /api/v1/tenants/acme/clusters": () => ({ data: [CLUSTER], next_cursor: null }) }, { ...PRO, role: "viewer" });
    renderApp("/t/acme/clusters");
    expect(await screen.findByRole("row", { name: /main/ })).toBeInTheDocument();
    expect(screen.getByText(/Owners and admins create, resize and delete clusters/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Create cluster" })).not.toBeInTheDocument();
    expect(screen.queryByLabelText("Size")).not.toBeInTheDocument();
    expect(calls.some((c) => new URL(c.url).pathname.endsWith("/cluster-sizes"))).toBe(false);
  });

  it("see a cluster's page without resize or delete", async () => {
    clustersApi(
      {
        "GET /api/v1/tenants/acme/clusters/main": () => DETAIL,
        "GET /api/v1/tenants/acme/clusters/main/events": () => ({ data: [event(2, "provisioning", "ready"), event(1, "", "pending")], next_cursor: null }),
      },
      { ...PRO, role: "member" },
    );
    renderApp("/t/acme/clusters/main");
    expect(await screen.findByRole("heading", { name: "main", level: 1 })).toBeInTheDocument();
    expect(await screen.findByRole("region", { name: "Status changes" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Resize cluster" })).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Delete cluster/ })).not.toBeInTheDocument();
  });
});

describe("a cluster's page", () => {
  it("shows the details, the indexes on it and the history newest first, with Load more", async () => {
    const { calls } = clustersApi({
      "GET /api/v1/tenants/acme/clusters/main": () => ({ ...DETAIL, last_error: "initdb failed", last_error_at: "2026-01-01T00:00:30Z" }),
      "GET /api/v1/tenants/acme/clusters/main/events": (request) =>
        new URL(request.url).searchParams.get("cursor") === "next"
          ? { data: [event(1, "", "pending")], next_cursor: null }
          : { data: [event(4, "provisioning", "ready"), event(3, "failed", "provisioning"), event(2, "provisioning", "failed", "initdb failed")], next_cursor: "next" },
    });
    renderApp("/t/acme/clusters/main");
    expect(await screen.findByRole("heading", { name: "main", level: 1 })).toBeInTheDocument();
    const facts = screen.getByRole("region", { name: "About this cluster" });
    expect(await within(facts).findByText(/CPU 500m, memory 1Gi, storage 10Gi/)).toBeInTheDocument();
    expect(screen.getByText(/initdb failed/, { selector: "p" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "docs" })).toHaveAttribute("href", "/t/acme/indexes/docs");
    await screen.findByRole("region", { name: "Status changes" });
    expect(changes()).toEqual(["provisioning → ready", "failed → provisioning", "provisioning → failed"]);
    await userEvent.setup().click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(changes()).toHaveLength(4));
    expect(changes()[3]).toBe("ordered → pending");
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();
    expect(calls.filter((c) => new URL(c.url).pathname.endsWith("/events")).map((c) => new URL(c.url).searchParams.get("cursor"))).toEqual([null, "next"]);
  });

  it("resizes, then refreshes the status and the history until the change landed", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let detail = DETAIL;
    let events = [event(2, "provisioning", "ready"), event(1, "", "pending")];
    const { calls } = clustersApi({
      "GET /api/v1/tenants/acme/clusters/main": () => detail,
      "GET /api/v1/tenants/acme/clusters/main/events": () => ({ data: events, next_cursor: null }),
      "PATCH /api/v1/tenants/acme/clusters/main": () => {
        detail = { ...DETAIL, size: "s", status: "updating", generation: 2, updated_at: "2026-01-02T00:00:00Z" };
        events = [{ ...event(3, "ready", "updating"), generation: 2, size: "s" }, ...events];
        return detail;
      },
    });
    renderApp("/t/acme/clusters/main");
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime.bind(vi) });
    const resize = await screen.findByRole("form", { name: "Resize" });
    expect(within(resize).getByRole("button", { name: "Resize cluster" })).toBeDisabled(); // nothing changed yet
    await user.selectOptions(within(resize).getByLabelText("Size"), "s");
    await user.click(within(resize).getByRole("button", { name: "Resize cluster" }));
    expect(await screen.findByText(/Resize to s × 1 requested\./)).toBeInTheDocument();
    expect(await screen.findByText(/Refreshing every 3 seconds while the cluster is updating/)).toBeInTheDocument();
    await waitFor(() => expect(changes()[0]).toBe("ready → updating"));
    const patch = calls.find((c) => c.method === "PATCH");
    expect(await patch?.json()).toEqual({ size: "s", replicas: 1 });

    detail = { ...detail, status: "ready", observed_generation: 2, updated_at: "2026-01-02T00:01:00Z" };
    events = [{ ...event(4, "updating", "ready"), generation: 2, size: "s" }, ...events];
    await vi.advanceTimersByTimeAsync(POLL_MS);
    await waitFor(() => expect(changes()).toEqual(["updating → ready", "ready → updating", "provisioning → ready", "ordered → pending"]));
    expect(screen.queryByText(/Refreshing every/)).not.toBeInTheDocument();
  });

  it("deletes only once the name is typed, then follows the deletion", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let detail = DETAIL;
    let gone = false;
    const { calls } = clustersApi({
      "GET /api/v1/tenants/acme/clusters/main": () => (gone ? apiError(404, "not_found", "No such cluster.") : detail),
      "GET /api/v1/tenants/acme/clusters/main/events": () => ({ data: [event(1, "", "pending")], next_cursor: null }),
      "DELETE /api/v1/tenants/acme/clusters/main": () => {
        detail = { ...DETAIL, status: "deleting", updated_at: "2026-01-02T00:00:00Z" };
        return detail;
      },
    });
    renderApp("/t/acme/clusters/main");
    const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime.bind(vi) });
    await user.click(await screen.findByRole("button", { name: "Delete cluster…" }));
    const dialog = screen.getByRole("dialog", { name: "Delete cluster main?" });
    expect(dialog).toHaveTextContent("with its index (docs)");
    const confirm = within(dialog).getByLabelText(/to confirm/);
    expect(confirm).toHaveFocus();
    const button = within(dialog).getByRole("button", { name: "Delete cluster" });
    await user.type(confirm, "mai");
    expect(button).toBeDisabled();
    await user.type(confirm, "n");
    expect(button).toBeEnabled();
    await user.click(button);
    expect(await screen.findByText(/Cluster main is being deleted\./)).toBeInTheDocument();
    expect(await screen.findByText("deleting", { selector: ".badge" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Delete cluster…" })).not.toBeInTheDocument();
    expect(calls.filter((c) => c.method === "DELETE")).toHaveLength(1);

    gone = true;
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(await screen.findByText(/There is no cluster main here: it was deleted/)).toBeInTheDocument();
  });

  it("cancels the deletion with Escape, sending nothing", async () => {
    const { calls } = clustersApi({
      "GET /api/v1/tenants/acme/clusters/main": () => DETAIL,
      "GET /api/v1/tenants/acme/clusters/main/events": () => ({ data: [], next_cursor: null }),
    });
    renderApp("/t/acme/clusters/main");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Delete cluster…" }));
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
  });

  it("answers Page not found for a cluster the API does not know", async () => {
    clustersApi();
    renderApp("/t/acme/clusters/nope");
    expect(await screen.findByRole("heading", { name: "Page not found" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Back to the clusters" })).toHaveAttribute("href", "/t/acme/clusters");
  });
});
