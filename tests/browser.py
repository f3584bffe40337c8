"""A real headless browser for the dashboard's tests: Debian's ``chromium`` driven by its
``chromium-driver`` through Selenium (``scripts/ensure-chromium.sh`` installs both for
``make test``).

Selenium's calls block, and the router under test runs on the test's own event loop, so every
call goes through ``asyncio.to_thread``: the loop keeps serving the page while the browser waits
for it. Waits are conditions checked in the page (a JavaScript expression) until a deadline,
never sleeps. Screenshots go to ``test-artifacts/screenshots/`` (ignored by git) for review.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any, Final

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

ROOT: Final = Path(__file__).resolve().parents[1]
SCREENSHOTS: Final = ROOT / "test-artifacts" / "screenshots"
BROWSERS: Final = ("chromium", "chromium-browser")
DRIVERS: Final = ("chromedriver", "/usr/lib/chromium/chromedriver")
WIDE: Final = (1280, 800)
PHONE: Final = (390, 844)
CHROMIUM_FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",  # the tests may run as root (CI does); the sandbox refuses root
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    # Nothing but the page's own requests: no updates, sync, translation or metrics pings.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--metrics-recording-only",
    "--password-store=basic",
)


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def find_chromium() -> tuple[str, str] | str:
    """The browser and driver executables, or why the browser tests cannot run here."""
    browser = _which(BROWSERS)
    driver = _which(DRIVERS)
    if browser and driver:
        return browser, driver
    missing = [
        name for name, path in (("chromium", browser), ("chromium-driver", driver)) if not path
    ]
    return (
        f"{' and '.join(missing)} not installed and scripts/ensure-chromium.sh (run by make test) "
        "could not install it here: apt-get install chromium chromium-driver"
    )


def start_chromium(browser: str, driver: str) -> webdriver.Chrome:
    """A headless Chromium whose console messages can be read (``goog:loggingPrefs``)."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


class Page:
    """One browser tab, used from async tests: each call runs in a worker thread."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    async def viewport(self, size: tuple[int, int]) -> None:
        """Emulate a screen of ``size`` CSS pixels (a phone's when it is narrow)."""
        width, height = size
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        await self._run(self.driver.execute_cdp_cmd, "Emulation.setDeviceMetricsOverride", metrics)

    async def open(self, url: str, size: tuple[int, int] = WIDE) -> None:
        await self.viewport(size)
        await self._run(self.driver.get, url)
        await self.console()  # start each page with an empty console record

    async def js(self, script: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_script, script, *args)

    async def until(self, expression: str, *args: Any, what: str, timeout: float = 10.0) -> Any:
        """Evaluate ``expression`` (JavaScript, ``arguments[i]`` for ``args``) until it is
        truthy; its value. Fails after ``timeout`` seconds, naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(f"return ({expression});", *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.05)

    async def element(self, css: str) -> WebElement:
        found: WebElement = await self._run(self.driver.find_element, By.CSS_SELECTOR, css)
        return found

    async def type(self, css: str, text: str) -> None:
        field = await self.element(css)
        await self._run(field.clear)
        await self._run(field.send_keys, text)

    async def choose(self, css: str, value: str) -> None:
        await self._run(Select(await self.element(css)).select_by_value, value)

    async def click(self, css: str) -> None:
        """Click ``css`` as a user would, scrolled to the middle of the screen first (so the
        sticky navigation bar cannot be in the way)."""
        target = await self.element(css)
        await self.js("arguments[0].scrollIntoView({block: 'center'});", target)
        await self._run(target.click)

    async def block(self, *patterns: str) -> None:
        """Make the browser fail every request whose URL matches one of ``patterns`` (``*``
        wildcards), as a proxy that drops them would; ``block()`` lifts it."""
        await self._run(self.driver.execute_cdp_cmd, "Network.enable", {})
        await self._run(
            self.driver.execute_cdp_cmd, "Network.setBlockedURLs", {"urls": list(patterns)}
        )

    async def console(self) -> list[dict[str, Any]]:
        """The console messages since the last call (errors are ``level == "SEVERE"``)."""
        entries: list[dict[str, Any]] = await self._run(self.driver.get_log, "browser")
        return entries

    async def overflow(self) -> int:
        """How many CSS pixels the page is wider than the screen (0: no sideways scrolling)."""
        width: int = await self.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )
        return width

    async def screenshot(self, name: str, size: tuple[int, int]) -> Path:
        """The whole page at ``size``'s width, saved as ``test-artifacts/screenshots/NAME.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = await self.js("return document.documentElement.scrollHeight;")
        await self.viewport((size[0], max(size[1], int(height))))
        path = SCREENSHOTS / f"{name}.png"
        await self._run(self.driver.save_screenshot, str(path))
        await self.viewport(size)
        return path
