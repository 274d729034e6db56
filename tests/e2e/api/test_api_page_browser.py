"""The status page at `/` in a real headless Chromium: it shows what the API says, and follows
a publish by itself through the live stream.

Debian's `chromium` and `chromium-driver` drive the page through selenium; every blocking
selenium call runs in a thread so the session's event loop (and the world's fixtures) go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.api.conftest import ALICE, CHAIN, ApiWorld

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path("/tmp/xmargin-page.png")
TIMEOUT = 30.0

T = TypeVar("T")


def start_browser(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,2200",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    return driver


def health_factor_text(value: str | None) -> str:
    """The health factor as the page shows it: 3 decimals, half away from zero."""
    if value is None:
        return "—"
    return str(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text).strip()


def live_state(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "live").get_attribute("data-state") or "")


def page_numbers(driver: WebDriver) -> tuple[str, str]:
    return text_of(driver, "status"), text_of(driver, "health-factor")


async def wait_for(
    driver: WebDriver, read: Callable[[WebDriver], T], accept: Callable[[T], bool], what: str
) -> T:
    """Poll `read(driver)` until `accept` says yes, or fail after TIMEOUT with the last value."""
    deadline = time.monotonic() + TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(read, driver)
        if accept(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


async def api_numbers(client: httpx.AsyncClient, path: str) -> tuple[str, str, int]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["status"], health_factor_text(body["health_factor"]), body["seq"]


def chart_points(driver: WebDriver) -> tuple[int, int, str]:
    chart = driver.find_element(By.ID, "history-chart")
    dots = chart.find_elements(By.CSS_SELECTOR, "circle.pt-hf")
    return (
        int(chart.get_attribute("data-points") or 0),
        len(dots),
        chart.get_attribute("data-last-seq") or "",
    )


async def test_page_shows_the_api_status_and_follows_the_stream(
    world: ApiWorld, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    driver = await asyncio.to_thread(start_browser, tmp_path / "chromium-profile")
    try:
        # (a) a link with ?user=bob opens bob: the page says what the API says.
        before = await api_numbers(client, "/v1/users/bob/margin")
        await asyncio.to_thread(driver.get, f"{world.base_url}/?user=bob")
        await wait_for(driver, page_numbers, lambda seen: seen == before[:2], "bob's status")
        assert await asyncio.to_thread(text_of, driver, "equity") != "—"
        assert await asyncio.to_thread(text_of, driver, "free-collateral") != "—"
        select = await asyncio.to_thread(driver.find_element, By.ID, "user-select")
        assert await asyncio.to_thread(select.get_attribute, "value") == "bob"
        await wait_for(driver, live_state, lambda state: state == "on", "the live stream")
        # A marker the page would lose if it reloaded: the update must come over the stream.
        await asyncio.to_thread(driver.execute_script, "window.__xmarginMarker = 'same page';")

        # (b) a price move and a publish change bob's status; the page follows by itself.
        await world.republish(eth_price=2_400_00000000)
        after = await api_numbers(client, "/v1/users/bob/margin")
        assert after[0] in {"liquidatable", "margin_call"}, after
        assert after[0] != before[0] and after[2] > before[2], (before, after)
        await wait_for(driver, page_numbers, lambda seen: seen == after[:2], "bob's new status")
        marker = await asyncio.to_thread(driver.execute_script, "return window.__xmarginMarker;")
        assert marker == "same page", "the page reloaded instead of updating from the stream"

        # (c) the history chart holds the new point and at least one before it.
        points, dots, _ = await wait_for(
            driver,
            chart_points,
            lambda seen: seen[0] >= 2 and seen[2] == str(after[2]),
            "the chart to gain the new status",
        )
        assert dots == points, (points, dots)
        holdings = await asyncio.to_thread(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#holdings tbody tr")
        )
        assert len(holdings) >= 2  # bob's WETH deposit and USDC borrow
        liquidation = await asyncio.to_thread(text_of, driver, "liquidation-prices")
        assert "ETH" in liquidation
        await asyncio.to_thread(driver.save_screenshot, str(SCREENSHOT))

        # (d) pasting alice's CAIP-10 account shows alice, and the URL remembers it.
        account = f"{CHAIN}:{ALICE}"
        alice = await api_numbers(client, f"/v1/accounts/{account}/margin")
        box = await asyncio.to_thread(driver.find_element, By.ID, "account-input")
        await asyncio.to_thread(box.clear)
        await asyncio.to_thread(box.send_keys, account, Keys.ENTER)
        await wait_for(driver, page_numbers, lambda seen: seen == alice[:2], "alice's status")
        url = await asyncio.to_thread(lambda: driver.current_url)
        assert "account=" in url and ALICE.lower() in url.lower(), url
    finally:
        try:
            await world.republish(eth_price=3_000_00000000)
        finally:
            await asyncio.to_thread(driver.quit)
