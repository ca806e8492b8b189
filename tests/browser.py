"""Headless Debian Chromium driven by Playwright, for the page tests: a page that must fetch nothing from
outside riskwatch and throw no script error."""
from __future__ import annotations

import shutil
from contextlib import contextmanager

from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")


@contextmanager
def open_page(width: int = 1920, height: int = 1080):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        pg = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN").new_page()
        outside: list[str] = []
        errors: list[str] = []
        pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(LOCAL) else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        assert outside == [], f"the page fetched from outside riskwatch: {outside}"
        assert errors == [], f"the page threw: {errors}"
        browser.close()
