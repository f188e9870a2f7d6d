"""Drives scimd's operator console in headless Chromium (run by scripts/console-check.sh).

Seeds organization acme as an IdP would (creates, a change, a refused write, a deletion),
then, as an operator in a browser: signs in with an admin key (after a refused organization
key), opens the overview, the organization, the change log (filtered and rejected-only) and a
user's page, creates a key through the form and revokes it, signs out, and checks what each
page shows. A screenshot of each page goes to $SHOTS.
"""

import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By

BASE = os.environ["BASE"]
TOKEN = os.environ["TOKEN"]
ADMIN_TOKEN = os.environ["ADMIN_TOKEN"]
SHOTS = os.environ["SHOTS"]


def scim(method, path, body=None, agent="Okta SCIM Client 1.0"):
    """A SCIM request as the IdP sends it: (status, JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{BASE}/scim/v2{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/scim+json")
    request.add_header("User-Agent", agent)
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, None


def seed():
    """What the pages will show: returns Ada's id."""
    status, ada = scim("POST", "/Users", {"userName": "ada@example.com", "title": "Engineer",
                                          "urn:omni:params:1.0:UserAttribute": {"cost_center": "R&D"}})
    assert status == 201, status
    for name in ["grace", "edsger", "barbara"]:
        status, _ = scim("POST", "/Users", {"userName": f"{name}@example.com"})
        assert status == 201, status
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "active", "value": False}]}
    status, _ = scim("PATCH", f"/Users/{ada['id']}", patch)
    assert status == 200, status
    status, _ = scim("POST", "/Users", {"userName": 42}, agent="Entra Provisioning")
    assert status == 400, status
    status, group = scim("POST", "/Groups", {"displayName": "Engineering",
                                              "members": [{"value": ada["id"]}]})
    assert status == 201, status
    return ada["id"]


def body_text(driver):
    """The page's text, or "" while the browser is replacing the page."""
    try:
        return driver.find_element(By.TAG_NAME, "body").text
    except (NoSuchElementException, StaleElementReferenceException, WebDriverException):
        # Replaced while read (see `row_when`); `expect`'s deadline ends a wait that fails.
        return ""


def expect(driver, *texts, seconds=10):
    """Every one of `texts` on the page, waiting for it up to `seconds` (after a click, the
    page the form answers with may still be loading)."""
    deadline = time.monotonic() + seconds
    while True:
        page = body_text(driver)
        missing = [text for text in texts if text not in page]
        if not missing:
            return
        if time.monotonic() > deadline:
            sys.exit(f"{driver.current_url}: expected {missing[0]!r} in:\n{page}")
        time.sleep(0.1)


def row_when(driver, xpath, text, seconds=10):
    """The element at `xpath` once it shows `text`: a click on a form button returns before
    the browser has loaded the page the form answers with."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            rows = driver.find_elements(By.XPATH, xpath)
            if rows and text in rows[0].text:
                return rows[0]
        except (StaleElementReferenceException, WebDriverException):
            # The next page replaced it while it was read: Chromium reports that as a stale
            # element, or (156) as an inspector error, "Node with given id does not belong to
            # the document". The deadline below still ends a wait that never succeeds.
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{driver.current_url}: no {xpath} showing {text!r} in:\n"
                     + body_text(driver))
        time.sleep(0.1)


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def sign_in(driver, key):
    driver.get(f"{BASE}/admin")
    field = driver.find_element(By.ID, "key")
    field.send_keys(key)
    field.submit()


def main():
    ada = seed()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1600"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    try:
        # No session: the sign-in form; an organization key does not open the console.
        sign_in(driver, TOKEN)
        expect(driver, "That is not a valid admin key.")
        shot(driver, "1-sign-in-refused")
        sign_in(driver, ADMIN_TOKEN)
        expect(driver, "Organizations", "acme", "globex", "changes, 24 h", "health")
        shot(driver, "2-overview")

        driver.find_element(By.LINK_TEXT, "acme").click()
        expect(driver, "1 inactive user ·", "Changes per hour, last 24 hours",
               "Rejected writes and 429s per hour", "Changes per day, last 30 days",
               "okta", "Okta SCIM Client 1.0", "poll", "cost_center",
               "Latest changes", "POST /scim/v2/Users", "400 invalidValue")
        charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg")
        assert len(charts) == 4, len(charts)
        shot(driver, "3-organization")

        driver.find_element(By.LINK_TEXT, "The whole change log").click()
        expect(driver, "Change log", "create", "patch")
        shot(driver, "4-change-log")
        driver.find_element(By.NAME, "operation").send_keys("patch")
        driver.find_element(By.CSS_SELECTOR, "form.filter button").click()
        deadline = time.monotonic() + 10
        while "operation=patch" not in driver.current_url and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 1, [r.text for r in rows]
        driver.get(f"{BASE}/admin/orgs/acme/changes?failed=1")
        expect(driver, "Rejected writes", "Entra Provisioning", "invalidValue")
        shot(driver, "5-rejected-writes")

        driver.get(f"{BASE}/admin/orgs/acme/resources/{ada}")
        expect(driver, "ada@example.com", "History", "patch", "(deactivated)", "create",
               "by okta", "Okta SCIM Client 1.0")
        shot(driver, "6-user")

        # A key through the form: shown once, then revoked.
        driver.get(f"{BASE}/admin/orgs/acme")
        driver.find_element(By.ID, "key-name").send_keys("entra")
        driver.find_element(By.XPATH, "//button[text()='Create key']").click()
        expect(driver, "Key entra created", "shown only this once")
        shot(driver, "7-new-key")
        token = driver.find_element(By.CSS_SELECTOR, "pre.token").text.strip()
        assert token.count(".") == 2, token
        driver.get(f"{BASE}/admin/orgs/acme")
        driver.find_element(By.CSS_SELECTOR, "button[aria-label='Revoke key entra']").click()
        row_when(driver, "//td[text()='entra']/..", "revoked")

        driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
        driver.get(f"{BASE}/admin")
        expect(driver, "Admin key")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
