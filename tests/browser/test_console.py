"""The console, in headless Chromium, against the runner: sign in, a quota bar that follows a
reserve and a commit made through the API, a 429 shown as such, an alert listed, the admin
view, keyboard-only use, and both widths (1280 and 390 px) without JavaScript errors."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.browser.conftest import Tab, open_tab
from tests.e2e.conftest import Server

QUOTA = "tenant:llm:month"


def new_tenant(server: Server, limit: str = "10") -> tuple[str, str]:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    assert server.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": tenant})[0] == 201
    status, _, _ = server.call("PUT", f"/v1/tenants/{tenant}/quotas/{QUOTA}", {"limit_usd": limit})
    assert status == 200
    status, _, issued = server.call("POST", f"/v1/tenants/{tenant}/api-keys")
    assert status == 201
    return tenant, issued["api_key"]


def sign_in(tab: Tab, server: Server, key: str, tenant: str = "") -> None:
    page = tab.page
    page.goto(server.url + "/console")
    page.fill("#api-key", key)
    page.fill("#tenant-id", tenant)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("body[data-state=ready]")


def bar(page: Any, quota: str = QUOTA) -> Any:
    return page.locator(f'li[data-quota-id="{quota}"]')


def refresh(page: Any) -> None:
    page.click("#refresh")
    page.wait_for_selector("body[data-state=ready]")


def test_a_tenant_signs_in_and_its_quota_bar_follows_a_reserve_and_a_commit(
    tab: Tab, server: Server
) -> None:
    # Given a tenant with a $10 monthly llm quota, signed in with its own key
    tenant, key = new_tenant(server)
    sign_in(tab, server, key, tenant)
    page = tab.page
    assert page.locator("#who").inner_text() == f"Signed in as tenant {tenant}"
    assert bar(page).locator(".bar").get_attribute("aria-valuenow") == "0.0"
    # the key is in this tab's session storage, and nowhere else
    stored = page.evaluate("() => sessionStorage.getItem('costguard.session')")
    assert key in stored
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    # When a $4 reserve is made through the API
    status, _, hold = server.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {"resource": "llm", "estimated_cost_usd": "4"},
        key=key,
    )
    assert status == 201
    refresh(page)
    # Then the bar holds 40 %: $4 held, nothing spent
    item = bar(page)
    assert item.locator(".bar").get_attribute("aria-valuenow") == "40.0"
    assert "held $4.00" in item.inner_text()
    assert item.locator(".spent-figure").inner_text() == "spent $0.00"
    # When it commits $2.50
    status, _, _ = server.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations/{hold['reservation_id']}/commit",
        {"resource": "llm", "cost_usd": "2.50"},
        key=key,
    )
    assert status == 200
    refresh(page)
    # Then the bar shows 25 % spent and $7.50 remaining
    item = bar(page)
    assert item.locator(".bar").get_attribute("aria-valuenow") == "25.0"
    assert item.locator(".spent-figure").inner_text() == "spent $2.50"
    assert item.locator(".remaining-figure").inner_text() == "$7.50"
    assert tab.js_errors == []


def test_a_refusal_is_shown_as_a_429_with_its_quota_and_retry_after(
    tab: Tab, server: Server
) -> None:
    # Given a tenant whose $10 quota is spent to the cent
    tenant, key = new_tenant(server)
    body = {"resource": "llm", "cost_usd": "10"}
    assert server.call("POST", f"/v1/tenants/{tenant}/usage", body, key=key)[0] == 201
    sign_in(tab, server, key, tenant)
    page = tab.page
    # Then its bar is full and says new reserves are refused
    item = bar(page)
    assert item.locator(".bar").get_attribute("aria-valuenow") == "100.0"
    assert "new reserves are refused (429)" in item.inner_text()
    # When the console tries a $1 spend
    page.fill("#try-amount", "1.00")
    with page.expect_response(re.compile(r"/reservations$")) as answer:
        page.click("#try-form button[type=submit]")
    assert answer.value.status == 429
    # Then the refusal is shown as a 429 naming the quota, its figures and Retry-After
    outcome = page.locator("#try-result .outcome.refused")
    outcome.wait_for()
    text = outcome.inner_text()
    assert outcome.get_attribute("data-status") == "429"
    assert text.startswith("429 ")
    assert QUOTA in text and "remaining $0.00" in text and "requested $1.00" in text
    assert re.search(r"Retry after \d+ s", text)
    assert tab.js_errors == []


def test_a_threshold_alert_is_listed(tab: Tab, server: Server) -> None:
    # Given a tenant past 50 % of its quota, and the stream processed (alerts recorded)
    tenant, key = new_tenant(server)
    body = {"resource": "llm", "cost_usd": "6"}
    assert server.call("POST", f"/v1/tenants/{tenant}/usage", body, key=key)[0] == 201
    assert server.call("POST", "/local/schedules/stream", key=None)[0] == 200
    # When the tenant opens the console
    sign_in(tab, server, key, tenant)
    # Then the 50 % alert is listed
    alerts = tab.page.locator("#tenant-alerts li[data-alert-type=threshold]")
    assert alerts.count() >= 1
    assert f"{tenant}: {QUOTA} passed 50%" in tab.page.locator("#tenant-alerts").inner_text()
    assert tab.js_errors == []


def test_the_admin_sees_the_platform_and_opens_a_tenant(tab: Tab, server: Server) -> None:
    from tests.e2e.conftest import ADMIN

    tenant, key = new_tenant(server)
    body = {"resource": "llm", "provider": "openai", "model": "gpt-4o", "cost_usd": "9"}
    assert server.call("POST", f"/v1/tenants/{tenant}/usage", body, key=key)[0] == 201
    sign_in(tab, server, ADMIN)
    page = tab.page
    assert page.locator("#who").inner_text() == "Signed in as the operator (admin key)"
    page.locator("#platform-daily canvas").first.wait_for()
    assert "openai/gpt-4o" in page.locator("#platform-models").inner_text()
    assert tenant in page.locator("#platform-quotas").inner_text()  # 90 % of its $10
    page.locator("#platform-tenants").get_by_role("button", name=tenant).click()
    page.wait_for_selector("#tenant:not([hidden])")
    page.wait_for_selector("body[data-state=ready]")
    assert page.locator("#tenant-title").inner_text() == f"Tenant {tenant}"
    assert tab.js_errors == []


def test_a_wrong_key_is_refused_and_signing_out_forgets_the_key(tab: Tab, server: Server) -> None:
    page = tab.page
    page.goto(server.url + "/console")
    page.fill("#api-key", "cg.0123456789abcdef.wrong")
    page.click("#sign-in-form button[type=submit]")
    problem = page.locator("#problem")
    problem.wait_for()
    assert problem.inner_text().startswith("401 Unauthorized")
    tenant, key = new_tenant(server)
    sign_in(tab, server, key, tenant)
    page.click("#sign-out")
    assert page.locator("#sign-in").is_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert tab.js_errors == []


def test_keyboard_alone_signs_in_and_reaches_every_control(tab: Tab, server: Server) -> None:
    tenant, key = new_tenant(server)
    page = tab.page
    page.goto(server.url + "/console")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "api-key"
    page.keyboard.type(key)
    page.keyboard.press("Tab")
    page.keyboard.type(tenant)
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-state=ready]")
    # Tab through the whole page: every visible control is reached
    reached = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                "() => document.activeElement.id || document.activeElement.outerHTML.slice(0, 60)"
            )
        )
    for control in ("refresh", "sign-out", "try-resource", "try-amount", "try-user"):
        assert control in reached, control
    assert (
        any("<details" in r or "<summary" in r for r in reached)
        or page.locator("details").count() == 0
    )
    assert tab.js_errors == []


def test_readable_at_1280_and_390_pixels_wide(browser: Any, server: Server) -> None:
    from tests.e2e.conftest import ADMIN

    tenant, key = new_tenant(server, "20")
    server.call("PUT", f"/v1/tenants/{tenant}/quotas/tenant:sandbox:week", {"limit_usd": "3"})
    for body in (
        {
            "resource": "llm",
            "provider": "openai",
            "model": "gpt-4o",
            "cost_usd": "7.25",
            "user_id": "u-ada",
        },
        {
            "resource": "llm",
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "cost_usd": "3.10",
            "user_id": "u-bob",
        },
        {"resource": "sandbox", "tier": "gpu", "seconds": "3600", "user_id": "u-ada"},
    ):
        assert server.call("POST", f"/v1/tenants/{tenant}/usage", body, key=key)[0] == 201
    # the weekly digest (run now) and the forecast, delivered by the stream
    for schedule in ("recommendations", "forecast", "stream"):
        assert server.call("POST", f"/local/schedules/{schedule}", key=None)[0] == 200
    for width, height in ((1280, 900), (390, 844)):
        for who, secret, name in ((tenant, key, "tenant"), ("", ADMIN, "admin")):
            t = open_tab(browser, width, height)
            try:
                sign_in(t, server, secret, who)
                t.page.wait_for_load_state("networkidle")
                overflow = t.page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, (width, name, overflow)
                size = t.page.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)")
                assert size >= 14
                if name == "tenant":  # the digest is listed with the other alerts
                    digest = t.page.locator("#tenant-alerts li[data-alert-type=recommendation]")
                    assert "recommendation, $" in digest.first.inner_text()
                t.shot(f"console-{name}-{width}.png")
                assert t.js_errors == []
            finally:
                t.page.context.close()
