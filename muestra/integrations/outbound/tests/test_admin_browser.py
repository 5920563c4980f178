"""The administrator creates a subscription in a real browser, copies the secret, and looks at the deliveries."""

from __future__ import annotations

import pytest

from muestra.integrations.models import Subscription
from muestra.web.conftest import browser  # noqa: F401 - the fixture
from muestra.web.testing import chromium_available, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not chromium_available(), reason="Chromium not installed")]


def test_admin_creates_a_subscription_and_sees_the_secret_once(browser, live_server, world):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server.url, world.users["admin"])
    page.goto(f"{live_server.url}/admin/integrations/subscription/add/")
    page.locator("#id_name").fill("Epivigila")
    page.locator("#id_url").fill("https://vigilancia.example.org/hooks/muestra")
    page.locator("input[name=event_kinds][value=registered]").check()
    page.locator("input[name=event_kinds][value=result_delivered]").check()
    shot(page, "outbound-subscription-add-1280")
    page.locator("input[name=_save]").click()
    page.wait_for_load_state()
    secret = page.locator("#subscription-secret").input_value()
    assert secret == Subscription.objects.get().secret
    shot(page, "outbound-subscription-secret-1280")
    page.set_viewport_size({"width": 360, "height": 800})
    shot(page, "outbound-subscription-secret-360")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/integrations/subscription/")
    assert secret not in page.content()
    shot(page, "outbound-subscriptions-1280")
    page.goto(f"{live_server.url}/admin/integrations/delivery/?state__exact=dead")
    shot(page, "outbound-deliveries-dead-1280")
    page.close()
