"""The browser desk in a real browser (issue 22 point 3): Debian's chromium, headless,
driven by selenium through Debian's chromedriver, against `mailbot serve` started for
real on a run with Dovecot + aiosmtpd: log in, approve a waiting mail, see the
registration on the participants page. Skipped when chromium is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_serve_desk import HEIKE, PASSWORD, run, waiting  # noqa: F401
from test_serve_gate import _free_port, _listening

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver "
                                       "(scripts/install-servers)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--lang=de"]


@pytest.fixture
def chromium():
    webdriver = pytest.importorskip("selenium.webdriver")
    profile = tempfile.mkdtemp(prefix="mailbot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER),
                              options=options)
    driver.implicitly_wait(10)  # waits for an element to appear, asserts nothing on time
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(run):  # noqa: F811
    config, _, handler = run
    port = _free_port()
    env = {**os.environ, "MAILBOT_SERVE_PASSWORD": PASSWORD}
    config.write_text(config.read_text() + '\n[serve]\npassword_env = "MAILBOT_SERVE_PASSWORD"\n')
    proc = subprocess.Popen([sys.executable, "-m", "mailbot", "--config", str(config), "serve",
                             "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _listening(port) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}", config, handler
    finally:
        proc.terminate()
        proc.communicate(timeout=15)


def test_log_in_approve_a_waiting_mail_and_see_the_registration(chromium, served, tmp_path):
    from selenium.webdriver.common.by import By

    base, config, handler = served
    number = waiting(config)[HEIKE]
    chromium.get(f"{base}/-/zu-beantworten")
    assert "/-/anmelden" in chromium.current_url, "the login comes first"
    chromium.find_element(By.ID, "passwort").send_keys(PASSWORD)
    chromium.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    row = chromium.find_element(By.ID, f"mail-{number}")
    assert "Frage zum Auftakttreffen" in row.text
    chromium.save_screenshot(str(Path(os.environ.get("MAILBOT_SCREENSHOT_DIR", tmp_path))
                                 / "zu-beantworten.png"))
    row.find_element(By.NAME, "freigeben").click()
    outcome = chromium.find_element(By.ID, "ergebnis").text
    assert outcome == f"Heike Wagner <{HEIKE}>: bestätigt. Die Mail ist verschickt."
    assert f"mail-{number}" not in chromium.page_source, "no longer waiting"
    chromium.find_element(By.LINK_TEXT, "Teilnehmende").click()
    assert chromium.current_url.endswith("/-/teilnehmende")
    assert HEIKE in chromium.page_source and "Heike Wagner" in chromium.page_source
    chromium.save_screenshot(str(Path(os.environ.get("MAILBOT_SCREENSHOT_DIR", tmp_path))
                                 / "teilnehmende.png"))
    assert [e.rcpt_tos for e in handler.envelopes] == [[HEIKE]]
