"""The try-it page in real headless Chromium (Debian's chromium + chromium-driver).

Chromium's fake capture device plays a WAV file as the microphone; the page streams it over
the WebSocket (AudioWorklet PCM) or WebRTC (Opus), and the test reads the final text the page
shows. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from earmark_eval import normalize, wer
from tests.conftest import ARTIFACTS, silence_pcm
from tests.e2e.test_webrtc import metric, wait_metric, write_wav

# A sentence that espeak says clearly enough for tiny.en: "the quick brown fox" in espeak's
# voice is misheard 2-4 words in 15 even as a clean file, which left no margin for Opus.
TEXT = "Good morning everyone. Today we will talk about the weather and the news."
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def speech_wav(speak, tmp_path_factory) -> Path:
    # Leading silence: a WebRTC page sends nothing until ICE and DTLS are up (~0.5-1 s after
    # the microphone opens), and the fake microphone starts playing when it opens.
    pcm = np.concatenate([silence_pcm(2.0), speak(TEXT), silence_pcm(1.5)])
    return write_wav(tmp_path_factory.mktemp("browser") / "speech.wav", pcm)


@pytest.fixture
def browser(speech_wav) -> Iterator[object]:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.fail("chromium / chromedriver missing: run `make setup` (installs the Debian "
                    "packages chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1100,900", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={speech_wav}%noloop",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def page_state(driver) -> dict:
    return driver.execute_script(
        "return {state: earmark.state, finals: earmark.finals, errors: earmark.errors,"
        " metadata: earmark.metadata !== null,"
        " shown: document.getElementById('finals').textContent};")


def wait_for(driver, predicate, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = page_state(driver)
        if predicate(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.2)


def run_page(driver, server, mode: str, start: str, file: Path | None = None) -> dict:
    from selenium.webdriver.common.by import By

    driver.get(f"{server.http}/")
    driver.find_element(By.ID, f"mode-{mode}").click()
    if start == "file":
        assert file is not None
        driver.find_element(By.ID, "file").send_keys(str(file))
    else:
        driver.find_element(By.ID, "start-mic").click()
    st = wait_for(driver, lambda s: s["state"] == "live" or s["errors"], 30)
    assert st["state"] == "live", st
    # The words arrive as they are spoken; stop once the sentence is in (or time is up).
    words = len(TEXT.split())
    st = wait_for(driver, lambda s: len(" ".join(s["finals"]).split()) >= words - 1
                  or s["state"] == "closed", 30)
    if st["state"] != "closed":
        driver.find_element(By.ID, "stop").click()
    st = wait_for(driver, lambda s: s["state"] == "closed", 30)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"browser-{mode}-{start}.png"))
    assert st["state"] == "closed" and not st["errors"], st
    return st


@pytest.mark.parametrize("mode", ["websocket", "webrtc"])
def test_microphone_on_the_page_gives_final_text(browser, server, mode):
    st = run_page(browser, server, mode, "mic")
    text = " ".join(st["finals"])
    # The strict WER comparison of the paths is test_webrtc.py's, on real speech.
    assert wer([TEXT], [text]) <= 0.25, text
    assert st["metadata"], "the session ended without Metadata"
    # Finals are shown on the page as words (with timings on hover).
    assert normalize(st["shown"]) == normalize(text)


def test_a_file_streams_from_the_page(browser, server, speech_wav):
    st = run_page(browser, server, "webrtc", "file", speech_wav)
    text = " ".join(st["finals"])
    assert wer([TEXT], [text]) <= 0.25, text


def test_closing_the_tab_closes_the_peer(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(f"{server.http}/")
    browser.find_element(By.ID, "mode-webrtc").click()
    browser.find_element(By.ID, "start-mic").click()
    st = wait_for(browser, lambda s: s["state"] == "live" or s["errors"], 30)
    assert st["state"] == "live", st
    assert metric(server, "earmark_webrtc_peers") == 1
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.switch_to.window(first)
    browser.close()  # the tab goes; the browser stays
    peers = asyncio.run(wait_metric(server, "earmark_webrtc_peers", 0, 20))
    assert peers == 0
    assert metric(server, "earmark_webrtc_tasks") == 0
