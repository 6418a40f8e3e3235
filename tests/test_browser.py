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


def bar_widths(page) -> list[float]:
    """The drawn width of each probability bar's fill, in pixels, as the browser laid it out."""
    return [page.locator("#bars li .fill").nth(i).bounding_box()["width"] for i in range(10)]


def test_bars_uploads_and_errors_as_a_user_sees_them(server, tmp_path):
    from PIL import Image, ImageDraw
    from playwright.sync_api import expect, sync_playwright

    four = Image.new("L", (200, 200), 255)  # a thick 4 on white paper, to upload
    ImageDraw.Draw(four).line([(120, 20), (40, 130), (160, 130)], fill=0, width=18)
    ImageDraw.Draw(four).line([(120, 20), (120, 185)], fill=0, width=18)
    four.save(tmp_path / "four.png")
    (tmp_path / "notes.png").write_text("not an image")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(server)
            draw(page, THREE)
            expect(page.locator("#digit")).to_have_text("3", timeout=10_000)
            widths = bar_widths(page)
            assert widths[3] > 20 and all(widths[3] > 2 * w for d, w in enumerate(widths) if d != 3), widths

            page.click("#clear")
            page.set_input_files("#file", str(tmp_path / "four.png"))
            expect(page.locator("#digit")).to_have_text("4", timeout=10_000)
            # The pad shows the uploaded image: dark pixels where the 4's stem is.
            dark = page.evaluate("""() => {
                const d = document.getElementById('pad').getContext('2d').getImageData(0, 0, 280, 280).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }""")
            assert dark > 1000, dark

            page.set_input_files("#file", str(tmp_path / "notes.png"))
            expect(page.locator("#status")).not_to_be_empty(timeout=10_000)
            expect(page.locator("#digit")).to_have_text("–")
            assert max(bar_widths(page)) < 1  # the old answer's bars are gone
        finally:
            browser.close()


TILES_SIGNATURE = """(name) => Array.from(document.querySelectorAll(`.layer[data-name="${name}"] canvas`))
    .map((c) => c.toDataURL()).join("|")"""


@pytest.mark.parametrize("viewport", [{"width": 1000, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_see_inside_shows_every_layer_and_follows_the_drawing(server, viewport):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport=viewport)
            page.goto(server)
            draw(page, THREE)
            expect(page.locator("#digit")).to_have_text("3", timeout=10_000)
            expected = {"c1": 16, "s2": 16, "c3": 32, "s4": 32, "c5": 1, "f6": 1}  # the bundled fast network
            for name, count in expected.items():
                expect(page.locator(f'.layer[data-name="{name}"] canvas')).to_have_count(count)
                # Not blank: some tile of the layer has more than one grey level.
                levels = page.evaluate("""(name) => {
                    const seen = new Set();
                    for (const c of document.querySelectorAll(`.layer[data-name="${name}"] canvas`)) {
                        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        for (let i = 0; i < d.length; i += 4) seen.add(d[i]);
                    }
                    return seen.size; }""", name)
                assert levels > 2, (name, levels)
            before = {name: page.evaluate(TILES_SIGNATURE, name) for name in ("c1", "c3", "f6")}
            page.locator('.layer[data-name="c3"] canvas').nth(5).click()
            expect(page.locator("#kernel-caption")).to_contain_text("C3")
            page.click("#clear")
            draw(page, SEVEN)
            expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
            for name, signature in before.items():
                assert page.evaluate(TILES_SIGNATURE, name) != signature, name
            page.locator("#inside").scroll_into_view_if_needed()
            name = "desktop" if viewport["width"] > 500 else "phone"
            page.screenshot(path=str(ARTIFACTS / f"inside-{name}.png"), full_page=True)
        finally:
            browser.close()


def test_number_mode_reads_a_drawn_row_of_digits(server):
    """Tick "Several digits", draw 3 then 7 side by side on the wide pad: the page reads "37"."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(server)
            page.check("#number-mode")
            box = page.locator("#pad").bounding_box()
            assert box["width"] > 2.5 * box["height"], box  # the wide pad
            # The pad is 840x280 canvas pixels: the 3 in the first third, the 7 in the second.
            scale = box["width"] / 840
            for strokes, dx in ((THREE, 0), (SEVEN, 280)):
                for stroke in strokes:
                    x, y = stroke[0]
                    page.mouse.move(box["x"] + (x + dx) * scale, box["y"] + y * scale)
                    page.mouse.down()
                    for x, y in stroke[1:]:
                        page.mouse.move(box["x"] + (x + dx) * scale, box["y"] + y * scale, steps=8)
                    page.mouse.up()
            expect(page.locator("#digit")).to_have_text("37", timeout=10_000)
            # Each digit's 28x28 under its place on the strip below the pad (tests/test_number_page.py).
            assert page.locator("#places").is_visible() and not page.locator("#seen").is_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "number-mode.png"))
        finally:
            browser.close()
