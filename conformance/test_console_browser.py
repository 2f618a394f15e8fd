"""Issue 17: the web console in a real browser — Debian's headless Chromium driven through its
ChromeDriver by Selenium (scripts/setup-browser installs both).

A Keystone admin signs in, creates an instance and watches it reach RUNNING without reloading
the page (the live panel, over server-sent events), reboots it (hard), enters rescue mode with
a password and leaves it, stops it, sees the refusal (Nova's 409) when rebooting the stopped
instance, creates a key pair (the private key shown once) and deletes it, and signs out. A
Keystone reader sees the fleet but has no action buttons, and a change it forges from the page
(a same-origin fetch with its own CSRF token) is refused by Nova's policy.

Screenshots of each page go to $NUBIS_TEST_LOG_DIR/console-screenshots (else
target/console-screenshots); docs/console/*.png are copies of two of them.
Own server at sim time scale 0.5, so a create takes ~3.5 s and its PENDING can be watched."""
from __future__ import annotations

import openstack
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import new_browser, screenshot_dir, wait
from nubis import ADMIN_PASSWORD, unique_name

PASSWORD = "Console-Passw0rd!"


@pytest.fixture(scope="module")
def srv(server_factory):
    return server_factory("console-browser", NUBIS_SIM_TIME_SCALE="0.5")


@pytest.fixture(scope="module")
def shots():
    return screenshot_dir()


@pytest.fixture
def browser(request, shots):
    b = new_browser()
    yield b
    # The page the test ended on, for a failure's report.
    b.save_screenshot(str(shots / f"last-{request.node.name}.png"))
    b.quit()


def sign_in(b, base: str, user: str, password: str) -> None:
    b.get(base + "/console/fleet")
    assert b.current_url.endswith("/console/login"), b.current_url
    form = b.find_element(By.ID, "keystone")
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.NAME, "project").send_keys("admin")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(b, lambda: b.current_url.endswith("/console/fleet"), 30, "signed in")


def tencent_state(b) -> str:
    """The Tencent word for the state, as the live panel shows it now."""
    try:
        return b.find_element(By.CSS_SELECTOR, "#state .t").text
    except Exception:  # the panel is being replaced this instant
        return ""


def wait_state(b, state: str, timeout: float = 90) -> None:
    wait(b, lambda: tencent_state(b) == state, timeout, f"state {state}, shown {tencent_state(b)!r}")


def act(b, action: str, **fields) -> None:
    """Opens the action's confirmation from the instance page, fills it and confirms."""
    b.find_element(By.ID, f"act-{action}").click()
    wait(b, lambda: b.find_elements(By.ID, "confirm"), 30, "confirmation")
    form = b.find_element(By.ID, "confirm")
    for name, value in fields.items():
        el = form.find_element(By.NAME, name)
        if el.tag_name == "select":
            Select(el).select_by_visible_text(value)
        else:
            el.send_keys(value)
    b.find_element(By.ID, "confirm-button").click()


def accepted(b) -> None:
    wait(b, lambda: "Accepted. RequestId" in b.page_source, 30, "accepted")


def test_admin_drives_an_instance_through_its_life(srv, browser, shots):
    b, base = browser, srv.base_url
    b.get(base + "/console/login")
    b.save_screenshot(str(shots / "login.png"))
    sign_in(b, base, "admin", ADMIN_PASSWORD)

    # Create, then watch PENDING turn RUNNING on the same page (no reload: the marker set in
    # the page survives).
    b.find_element(By.ID, "create").click()
    name = unique_name("web")
    form = b.find_element(By.ID, "create-form")
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    b.save_screenshot(str(shots / "create.png"))
    b.find_element(By.ID, "create-button").click()
    wait(b, lambda: "/console/instances/" in b.current_url, 30, "instance page")
    accepted(b)
    b.execute_script("window.nubisNoReload = 1")
    first = tencent_state(b)
    b.save_screenshot(str(shots / "instance-pending.png"))
    wait_state(b, "RUNNING")
    assert b.execute_script("return window.nubisNoReload") == 1, "the page was reloaded"
    assert first in ("PENDING", "RUNNING"), first
    wait(b, lambda: "SUCCESS" in b.find_element(By.ID, "latest-op").text, 30, "create SUCCESS")
    b.save_screenshot(str(shots / "instance.png"))

    # Reboot (hard), with its confirmation.
    b.find_element(By.ID, "act-reboot").click()
    Select(b.find_element(By.NAME, "reboot_type")).select_by_visible_text("HARD")
    b.save_screenshot(str(shots / "confirm-reboot.png"))
    b.find_element(By.ID, "confirm-button").click()
    accepted(b)
    wait(b, lambda: "reboot" in b.find_element(By.ID, "latest-op").text, 30, "reboot shown")
    wait_state(b, "RUNNING")

    # Rescue with a password, then back.
    act(b, "enter_rescue", password=PASSWORD)
    accepted(b)
    wait_state(b, "RESCUE_MODE")
    b.save_screenshot(str(shots / "rescue.png"))
    act(b, "exit_rescue")
    accepted(b)
    wait_state(b, "RUNNING")

    # Stopped, a reboot is refused with Nova's code and message; the state stays.
    act(b, "stop")
    accepted(b)
    wait_state(b, "STOPPED")
    act(b, "reboot", reboot_type="SOFT")
    err = b.find_element(By.CSS_SELECTOR, ".error .code").text
    assert err == "409 conflictingRequest", err
    assert "vm_state stopped" in b.find_element(By.CSS_SELECTOR, ".error .message").text
    b.save_screenshot(str(shots / "refusal.png"))

    # The operations timeline shows every step of this life.
    b.find_element(By.LINK_TEXT, "Cancel").click()
    ops = b.find_element(By.ID, "operations").text
    for a in ("create", "reboot", "enter_rescue", "exit_rescue", "stop"):
        assert a in ops, (a, ops)

    # A key pair: created (its private key shown once), then deleted.
    b.find_element(By.LINK_TEXT, "Key pairs").click()
    key = unique_name("kp")
    b.find_element(By.ID, "key-form").find_element(By.NAME, "name").send_keys(key)
    b.find_element(By.ID, "key-button").click()
    pk = b.find_element(By.ID, "private-key").get_attribute("value")
    assert pk.startswith("-----BEGIN"), pk[:40]
    b.save_screenshot(str(shots / "keypair-created.png"))
    row = next(r for r in b.find_elements(By.CSS_SELECTOR, "#keypairs tbody tr") if key in r.text)
    row.find_element(By.LINK_TEXT, "Delete").click()
    b.find_element(By.ID, "confirm-button").click()
    wait(b, lambda: b.current_url.endswith("/console/keypairs"), 30, "back to key pairs")
    assert key not in b.find_element(By.ID, "keypairs").text
    assert "private-key" not in b.page_source, "the private key is shown only once"

    b.find_element(By.LINK_TEXT, "Fleet").click()
    assert name in b.find_element(By.ID, "rows").text
    b.save_screenshot(str(shots / "fleet.png"))
    b.find_element(By.LINK_TEXT, "Operations").click()
    b.save_screenshot(str(shots / "operations.png"))

    # Health: this node's request rate, latency and operations drawn from its metrics, and
    # the fleet by state; the charts fill in live.
    b.find_element(By.LINK_TEXT, "Health").click()
    assert len(b.find_elements(By.CSS_SELECTOR, "figure.chart svg")) == 3
    assert "STOPPED" in b.find_element(By.ID, "states").text
    wait(b, lambda: " samples since " in b.find_element(By.ID, "health").text, 30, "samples")
    b.save_screenshot(str(shots / "health.png"))

    b.find_element(By.ID, "sign-out").click()
    wait(b, lambda: b.current_url.endswith("/console/login"), 30, "signed out")
    b.get(base + "/console/fleet")
    assert b.current_url.endswith("/console/login")


def test_a_reader_sees_but_cannot_act(srv, browser, shots):
    conn = openstack.connect(auth_url=f"{srv.base_url}/identity/v3", username="admin", password=ADMIN_PASSWORD,
                             project_name="admin", user_domain_name="Default", project_domain_name="Default")
    image = conn.compute.find_image("img-ubt22x64") or next(conn.image.images())
    server = conn.compute.create_server(name=unique_name("seen"), image_id=image.id, flavor_id="S5.MEDIUM4",
                                        admin_password=PASSWORD, networks="auto")
    reader = unique_name("reader")
    user = conn.identity.create_user(name=reader, password=PASSWORD, domain_id="default")
    conn.identity.assign_project_role_to_user(conn.identity.find_project("admin"), user,
                                              conn.identity.find_role("reader"))
    b, base = browser, srv.base_url
    sign_in(b, base, reader, PASSWORD)
    assert server.id in b.find_element(By.ID, "rows").text
    assert 'id="create"' not in b.page_source
    b.get(f"{base}/console/instances/{server.id}")
    b.find_element(By.ID, "panel")
    assert 'class="actions"' not in b.page_source, "a reader has no action buttons"
    assert "Read-only" in b.page_source
    b.save_screenshot(str(shots / "reader.png"))
    # A change forged from the page itself (same origin, the session's own CSRF token) goes
    # to Nova, whose policy refuses a reader.
    body = b.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const csrf = document.querySelector('input[name=csrf]').value;
        fetch(location.pathname + '/reboot', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: 'csrf=' + encodeURIComponent(csrf) + '&reboot_type=HARD'})
          .then(r => r.text()).then(done, e => done('fetch failed: ' + e));
    """)
    assert "403 forbidden" in body, body[:2000]
    assert conn.compute.get_server(server.id).status in ("BUILD", "ACTIVE")
