"""The drawing page in a real browser: Debian's Chromium driven by Playwright.

Starts `lenet serve` on a free loopback port, draws digits with mouse events,
and reads the answer off the page. Saves a screenshot to test-artifacts/.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LENET_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]

# Strokes on the 280x280 pad, as lists of points.
THREE = [[(90, 60), (130, 40), (180, 50), (195, 90), (170, 125), (130, 135)],
         [(130, 135), (175, 145), (200, 185), (185, 225), (140, 240), (90, 225)]]
SEVEN = [[(70, 50), (210, 50), (180, 110), (150, 170), (125, 240)]]


@pytest.fixture(scope="module")
def server():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (.ci/run does)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("lenet serve did not start: " + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def draw(page, strokes):
    box = page.locator("#pad").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=8)
        page.mouse.up()


@pytest.mark.parametrize("viewport", [{"width": 1000, "height": 800}, {"width": 375, "height": 740}],
                         ids=["desktop", "phone"])
def test_draw_a_three_then_a_seven(server, viewport):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport=viewport)
            page.goto(server)
            expect(page.locator("#model")).to_contain_text("parameters")
            draw(page, THREE)
            expect(page.locator("#digit")).to_have_text("3", timeout=10_000)
            expect(page.locator("#bars li")).to_have_count(10)
            name = "desktop" if viewport["width"] > 500 else "phone"
            page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"), full_page=True)
            page.click("#clear")
            expect(page.locator("#digit")).to_have_text("–")
            draw(page, SEVEN)
            expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
        finally:
            browser.close()
