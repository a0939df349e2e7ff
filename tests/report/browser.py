"""Opening an HTML file in Debian's headless Chromium through Playwright (never a downloaded
browser) and reporting what a person would see go wrong: console errors, page errors, images
that did not decode, requests that left the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class PageCheck:
    """What the browser saw of one page."""

    headings: list[str] = field(default_factory=list)  # h1 and h2 texts, in order
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    image_widths: list[int] = field(default_factory=list)  # naturalWidth of every <img>
    requests: list[str] = field(default_factory=list)  # other than the file and data: URIs


def open_in_chromium(path: Path) -> PageCheck:
    """Load ``path`` in headless Chromium and collect what went wrong; skips when Debian's
    Chromium is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    check = PageCheck()
    url = path.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: check.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: check.page_errors.append(str(e)))
            own = ("data:", url)
            page.on(
                "request",
                lambda r: None if r.url.startswith(own) else check.requests.append(r.url),
            )
            page.goto(url, wait_until="load")
            check.headings = page.eval_on_selector_all(
                "h1, h2", "nodes => nodes.map(n => n.textContent.trim())"
            )
            check.image_widths = page.eval_on_selector_all(
                "img", "nodes => nodes.map(n => n.complete ? n.naturalWidth : 0)"
            )
        finally:
            browser.close()
    return check
