"""Headless Chromium for the web console's tests: Debian's chromium and chromedriver
(scripts/setup-browser) driven by Selenium."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nubis import REPO

# The browser and its driver talk over loopback only.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def screenshot_dir() -> Path:
    base = Path(os.environ.get("NUBIS_TEST_LOG_DIR") or REPO / "target")
    d = base / "console-screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_browser() -> webdriver.Chrome:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("chromium and chromedriver are missing: run scripts/setup-browser")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    b = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    b.set_page_load_timeout(60)
    # Lookups wait for the element (a click that submits a form returns before the next page
    # is there); absence is checked on the page's source instead.
    b.implicitly_wait(15)
    return b


def wait(b, fn, timeout: float = 60, what: str = ""):
    return WebDriverWait(b, timeout, poll_frequency=0.1).until(lambda _: fn(), message=what)


def sign_in_with_key(b, base: str, key: tuple[str, str]) -> None:
    b.get(base + "/console/login")
    form = b.find_element(By.ID, "access-key")
    form.find_element(By.NAME, "key_id").send_keys(key[0])
    form.find_element(By.NAME, "key_secret").send_keys(key[1])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(b, lambda: b.current_url.endswith("/console/fleet"), 30, "signed in")


def terminal_text(b) -> str:
    """What the serial console's terminal shows (its whole buffer, scrollback included)."""
    return b.execute_script("""
        const t = window.nubisTerm; if (!t) return '';
        const buf = t.buffer.active, out = [];
        for (let i = 0; i < buf.length; i++) { const l = buf.getLine(i); if (l) out.push(l.translateToString(true)); }
        return out.join('\\n');""")
