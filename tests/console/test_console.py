"""The console in a real browser against the real platform (issue 10): a new user signs up,
creates a tenant and an index, mints a key and copies it, upserts through the gateway with it,
sees the vector count, queries in the playground as that key, and revokes the key, after which
the playground's next call with it shows the gateway's refusal; a user of
another tenant who opens the first tenant's URLs gets the not-found page, and no response the
browser received carries the first tenant's data. The Billing page shows the usage
this period the gateway counted, with a chart per meter.

Screenshots of the pages: `make screenshots` (VECTORPLANE_CONSOLE_SCREENSHOTS=1) writes them to
docs/console/ (shown in docs/console.md); otherwise to the test's temporary folder."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from gateway.tests.conftest import Gateway, Server

from .helpers import Recorder, create_tenant, serious_violations, sign_up, unique


def test_a_new_user_goes_from_sign_up_to_a_query_and_revokes_the_key(
    context: BrowserContext,
    control_plane_server: Server,
    gateway: Gateway,
    shot: Callable[[Page, str], Path],
) -> None:
    base = control_plane_server.url
    page = context.new_page()
    sign_up(page, base, f"{unique('ada')}@example.test")
    tenant_name = unique("acme")
    create_tenant(page, tenant_name)
    slug = re.search(r"/console/t/([^/]+)", page.url)
    assert slug is not None, page.url
    expect(page.get_by_role("heading", name=re.compile("^Plan"))).to_be_visible()
    shot(page, "overview")

    page.get_by_role("link", name="Indexes").click()
    expect(page.get_by_text(re.compile("no indexes", re.I))).to_be_visible()
    page.get_by_label("Name").fill("docs")
    page.get_by_label("Dimension").fill("3")
    page.get_by_label("Metric").select_option("cosine")
    page.get_by_role("button", name="Create index").click()
    expect(page.get_by_role("cell", name="docs", exact=True)).to_be_visible()

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("app")
    page.get_by_label("read").check()
    page.get_by_label("write").check()
    page.get_by_role("button", name="Mint key").click()
    secret_box = page.get_by_label("Secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("vpk_"), secret
    shot(page, "api-keys")

    upsert = {"vectors": [
        {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"genre": "jazz"}},
        {"id": "b", "values": [0.0, 1.0, 0.0], "metadata": {"genre": "rock"}},
    ]}  # fmt: skip
    written = gateway.post("/v1/indexes/docs/vectors/upsert", secret, upsert)
    assert written.status_code == 200, written.text

    page.get_by_role("link", name="Indexes").click()
    row = page.get_by_role("row", name=re.compile(r"\bdocs\b"))
    expect(row).to_contain_text("2")
    shot(page, "indexes")

    def query_with_the_key() -> None:
        page.get_by_role("link", name="Indexes").click()
        page.get_by_role("cell", name="docs", exact=True).get_by_role("link", name="docs").click()
        page.get_by_label("Your API key (optional)").fill(secret)
        page.get_by_label("Vector", exact=True).fill("[1, 0, 0]")
        page.get_by_role("button", name="Run query").click()

    # The playground queries as the pasted key: its matches, then its refusal once revoked.
    query_with_the_key()
    results = page.get_by_role("table", name="Results")
    expect(results.get_by_role("cell", name="a", exact=True)).to_be_visible()

    page.get_by_role("link", name="API keys").click()
    page.get_by_role("button", name="Revoke app", exact=True).click()
    expect(page.get_by_role("row", name=re.compile(r"\bapp\b"))).to_contain_text(
        re.compile("revoked", re.I)
    )
    query_with_the_key()
    expect(page.get_by_role("alert")).to_contain_text("api_key_revoked")
    refused = gateway.post("/v1/indexes/docs/query", secret, {"vector": [1, 0, 0], "topK": 1})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "api_key_revoked"


def test_the_query_playground_queries_the_gateway(
    context: BrowserContext,
    control_plane_server: Server,
    gateway: Gateway,
    shot: Callable[[Page, str], Path],
) -> None:
    """The index page's playground mints its own short-lived key and calls the gateway
    directly (cross-origin, by CORS); an invalid filter is refused on its field, unsent."""
    base = control_plane_server.url
    page = context.new_page()
    queries: list[str] = []  # the browser's queries to the gateway (not its preflights)

    def record(request: Request) -> None:
        url = request.url
        if (
            request.method == "POST"
            and url.startswith(gateway.server.url)
            and url.endswith("/query")
        ):
            queries.append(url)

    page.on("request", record)
    sign_up(page, base, f"{unique('cy')}@example.test")
    create_tenant(page, unique("playco"))

    page.get_by_role("link", name="Indexes").click()
    page.get_by_label("Name").fill("docs")
    page.get_by_label("Dimension").fill("3")
    page.get_by_role("button", name="Create index").click()
    expect(page.get_by_role("cell", name="docs", exact=True)).to_be_visible()

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("loader")
    page.get_by_label("write").check()
    page.get_by_role("button", name="Mint key").click()
    secret_box = page.get_by_label("Secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    upsert = {"vectors": [
        {"id": "a", "values": [1.0, 0.0, 0.0], "metadata": {"genre": "jazz"}},
        {"id": "b", "values": [0.9, 0.1, 0.0], "metadata": {"genre": "rock"}},
    ]}  # fmt: skip
    written = gateway.post("/v1/indexes/docs/vectors/upsert", secret, upsert)
    assert written.status_code == 200, written.text

    page.get_by_role("link", name="Indexes").click()
    page.get_by_role("cell", name="docs", exact=True).get_by_role("link", name="docs").click()
    expect(page.get_by_role("heading", name="docs", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Query playground")).to_be_visible()

    page.get_by_role("button", name="Count vectors per namespace").click()
    per_namespace = page.get_by_role("region", name="Vectors per namespace")
    expect(per_namespace.get_by_role("row")).to_have_count(2)  # the header and the default
    expect(per_namespace.get_by_role("row").nth(1)).to_have_text(re.compile(r"\(default\)\s*2"))

    page.get_by_label("Vector", exact=True).fill("[1, 0, 0]")
    page.get_by_label("Top K", exact=True).fill("2")
    page.get_by_label("Filter", exact=True).fill('{"genre": {"$eq": "jazz"}}')
    page.get_by_role("button", name="Run query").click()
    results = page.get_by_role("table", name="Results")
    expect(results.get_by_role("cell", name="a", exact=True)).to_be_visible()
    expect(results.get_by_role("cell", name="b", exact=True)).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^\d+ matches in [\d.]+ ms$"))).to_be_visible()
    assert len(queries) == 1, queries
    snippets = page.get_by_role("region", name="Copy as")
    expect(snippets).to_contain_text('-H "Api-Key: $VECTORPLANE_KEY"')
    expect(snippets).not_to_contain_text("vpk_")
    shot(page, "query-playground")

    page.get_by_label("Filter", exact=True).fill('{"genre": ')
    page.get_by_role("button", name="Run query").click()
    filter_box = page.get_by_label("Filter", exact=True)
    expect(filter_box).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text(re.compile("Not valid JSON"))).to_be_visible()
    assert len(queries) == 1, queries  # the invalid filter was not sent

    # The query's latency, measured by the gateway and flushed with its usage (every 5 s),
    # comes back through the latency API into the index page's chart.
    last_hour = page.get_by_text(re.compile(r"Last hour with traffic: \d+ requests"))
    for _attempt in range(15):
        page.reload()
        expect(page.get_by_role("heading", name="Latency, last 24 hours")).to_be_visible()
        page.wait_for_timeout(1000)
        if last_hour.count():
            break
    expect(last_hour).to_be_visible()
    expect(page.locator(".uplot")).to_have_count(1)

    # A request the gateway refuses, counted by its code for this tenant, reaches the overview.
    refused = gateway.post("/v1/indexes/docs/query", secret, {"vector": [1, 0, 0], "topK": 0})
    assert refused.status_code == 400, refused.text
    code = refused.json()["error"]["code"]
    errors = page.get_by_role("region", name="Errors by code", exact=True)
    page.get_by_role("link", name="Overview").click()
    for _attempt in range(15):
        expect(page.get_by_role("heading", name=re.compile("^Errors by code"))).to_be_visible()
        if errors.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(errors.get_by_role("cell", name=code, exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"This week: [\d,]+ requests"))).to_be_visible()

    # The same usage, as billing counts it, on the Billing page: the write units of the upsert
    # this period (billing is off on this platform: at the plan's rates), a chart per meter.
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Usage this period")).to_be_visible()
    per_meter = page.get_by_role("region", name="Usage per meter")
    written_units = per_meter.get_by_role("row", name=re.compile("^Write units"))
    expect(written_units).to_contain_text(re.compile(r"[1-9][\d,]* write units"))
    expect(per_meter.get_by_role("row", name=re.compile("^Total so far"))).to_be_visible()
    expect(page.get_by_text(re.compile("Billing is off on this platform"))).to_be_visible()
    expect(page.locator(".usage-charts .uplot")).to_have_count(4)
    shot(page, "billing-usage")


def test_another_tenants_pages_are_not_found_and_leak_nothing(
    browser: Browser, control_plane_server: Server, shot: Callable[[Page, str], Path]
) -> None:
    base = control_plane_server.url
    owner_ctx = browser.new_context()
    other_ctx = browser.new_context()
    try:
        owner = owner_ctx.new_page()
        sign_up(owner, base, f"{unique('bea')}@example.test")
        secret_name = unique("secretcorp")
        create_tenant(owner, secret_name)
        match = re.search(r"/console/t/([^/]+)", owner.url)
        assert match is not None
        victim_slug = match.group(1)
        owner.get_by_role("link", name="Indexes").click()
        owner.get_by_label("Name").fill("hidden-index")
        owner.get_by_label("Dimension").fill("3")
        owner.get_by_role("button", name="Create index").click()
        expect(owner.get_by_role("cell", name="hidden-index", exact=True)).to_be_visible()

        intruder = other_ctx.new_page()
        log = Recorder(intruder)
        sign_up(intruder, base, f"{unique('eve')}@example.test")
        create_tenant(intruder, unique("evilcorp"))
        for path in ("", "/indexes", "/clusters", "/keys", "/members", "/audit"):
            intruder.goto(f"{base}/console/t/{victim_slug}{path}")
            expect(intruder.get_by_role("heading", name="Page not found")).to_be_visible()
        assert log.mentioning("hidden-index") == []
        assert log.mentioning(secret_name) == []
        shot(intruder, "not-found")
    finally:
        owner_ctx.close()
        other_ctx.close()


def test_signed_out_users_are_sent_to_sign_in(
    context: BrowserContext, control_plane_server: Server, shot: Callable[[Page, str], Path]
) -> None:
    page = context.new_page()
    page.goto(f"{control_plane_server.url}/console/t/anything/indexes")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shot(page, "sign-in")


def test_the_console_is_served_with_its_assets_and_csrf_cookie(
    control_plane_server: Server,
) -> None:
    with httpx.Client(base_url=control_plane_server.url) as client:
        entry = client.get("/console/t/x/indexes")
        assert entry.status_code == 200
        assert entry.headers["cache-control"] == "no-cache"
        assert "csrftoken" in entry.cookies
        scripts = re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', entry.text)
        assert scripts, entry.text
        for asset in scripts:
            answer = client.get(asset, headers={"Accept-Encoding": "gzip"})
            assert answer.status_code == 200, asset
            assert "immutable" in answer.headers.get("cache-control", ""), answer.headers
            # Compressed at build time (make frontend), sent compressed to who accepts it.
            assert answer.headers.get("content-encoding") == "gzip", (asset, answer.headers)
            assert int(answer.headers["content-length"]) < len(answer.content), asset
            plain = client.get(asset, headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers and plain.content == answer.content
        assert client.get("/console/assets/missing-00000000.js").status_code == 404
        assert client.get("/console", follow_redirects=False).status_code == 301
        assert client.post("/console/").status_code == 403  # CSRF, before any view


def test_the_main_pages_have_no_serious_accessibility_violations(
    browser: Browser, control_plane_server: Server
) -> None:
    base = control_plane_server.url
    results: dict[str, list[dict[str, Any]]] = {}
    for width in (1280, 375):  # a desktop and a phone width
        ctx = browser.new_context(viewport={"width": width, "height": 900})
        try:
            page = ctx.new_page()
            page.goto(f"{base}/console/")
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            results[f"sign-in@{width}"] = serious_violations(page)
            sign_up(page, base, f"{unique('axe')}@example.test")
            create_tenant(page, unique("axecorp"))
            expect(page.get_by_role("heading", name=re.compile("^Plan"))).to_be_visible()
            results[f"overview@{width}"] = serious_violations(page)
            for section, ready in (
                ("Indexes", "Create index"),
                ("API keys", "Mint key"),
                ("Members", "Invite"),
            ):
                page.get_by_role("link", name=section).click()
                expect(page.get_by_role("button", name=ready)).to_be_visible()
                results[f"{section}@{width}"] = serious_violations(page)
            page.get_by_role("link", name="Audit log").click()
            expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
            results[f"Audit log@{width}"] = serious_violations(page)
            page.get_by_role("link", name="Clusters").click()  # the free plan: its note
            no_clusters = re.compile("does not include dedicated clusters")
            expect(page.get_by_text(no_clusters)).to_be_visible()
            results[f"Clusters@{width}"] = serious_violations(page)
            page.get_by_role("link", name="Billing").click()
            expect(page.get_by_role("region", name="Usage per meter")).to_be_visible()
            results[f"Billing@{width}"] = serious_violations(page)
        finally:
            ctx.close()
    assert {page: found for page, found in results.items() if found} == {}


def test_a_viewer_joins_by_invitation_and_cannot_see_keys(
    browser: Browser, control_plane_server: Server
) -> None:
    base = control_plane_server.url
    owner_ctx = browser.new_context()
    viewer_ctx = browser.new_context()
    try:
        owner = owner_ctx.new_page()
        sign_up(owner, base, f"{unique('oli')}@example.test")
        create_tenant(owner, unique("viewco"))
        owner.get_by_role("link", name="API keys").click()
        key_name = unique("ops")
        owner.get_by_label("Key name").fill(key_name)
        owner.get_by_role("button", name="Mint key").click()
        expect(owner.get_by_label("Secret")).to_have_value(re.compile("^vpk_"))
        owner.get_by_role("button", name="Done, I stored it").click()

        viewer_email = f"{unique('val')}@example.test"
        owner.get_by_role("link", name="Members").click()
        owner.get_by_label("Email").fill(viewer_email)
        owner.get_by_label("Role", exact=True).select_option("viewer")
        owner.get_by_role("button", name="Invite").click()
        link = owner.get_by_label("Invitation link").input_value()
        assert "/console/invitations/accept?token=" in link

        viewer = viewer_ctx.new_page()
        log = Recorder(viewer)
        sign_up(viewer, base, viewer_email)
        expect(viewer.get_by_label("Tenant name")).to_be_visible()
        viewer.goto(link)
        viewer.get_by_role("button", name=re.compile("accept", re.I)).click()
        expect(viewer.get_by_role("link", name="Members")).to_be_visible()
        expect(viewer.get_by_role("link", name="API keys")).to_have_count(0)
        slug = re.search(r"/console/t/([^/]+)", viewer.url)
        assert slug is not None
        viewer.goto(f"{base}/console/t/{slug.group(1)}/keys")
        note = re.compile("Viewers cannot see or mint API keys")
        expect(viewer.get_by_text(note)).to_be_visible()
        assert log.mentioning(key_name) == []
        assert [url for url, _ in log.bodies if "/api-keys" in url] == []
    finally:
        owner_ctx.close()
        viewer_ctx.close()
