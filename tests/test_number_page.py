"""The served page's "several digits" mode as a user sees it (issue 31, item 9): each digit's
28x28 under its place, the found boxes on the pad, what the mode shows said in words, and upload
errors that say what to do. Debian's Chromium via Playwright, as tests/test_browser.py."""

from test_browser import ARTIFACTS, CHROMIUM, FLAGS, SEVEN, server  # noqa: F401 - server is a fixture

ONE = [[(140, 50), (135, 140), (132, 235)]]
# Brightness of a canvas's pixels summed per column band: where something was drawn.
COLUMN_INK = """(id) => { const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width,
    c.height).data; const cols = new Array(c.width).fill(0);
    for (let i = 0; i < d.length; i += 4) cols[(i / 4) % c.width] += d[i] + d[i + 3]; return cols; }"""


def draw_at(page, strokes, dx, width):
    box = page.locator("#pad").bounding_box()
    scale = box["width"] / width
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + (x + dx) * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + (x + dx) * scale, box["y"] + y * scale, steps=8)
        page.mouse.up()


def test_number_mode_shows_each_digit_under_its_place_and_the_boxes(server, tmp_path):  # noqa: F811
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    Image.new("L", (200, 200), 255).save(tmp_path / "blank.png")
    (tmp_path / "notes.png").write_text("not an image")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(server)
            expect(page.locator("#number-note")).to_be_hidden()
            page.check("#number-mode")
            expect(page.locator("#number-note")).to_be_visible()
            expect(page.locator("#number-note")).to_contain_text("for one digit")
            # A 1 in the first third of the 840 px pad, a 7 in the last: far apart.
            draw_at(page, ONE, 0, 840)
            draw_at(page, SEVEN, 560, 840)
            expect(page.locator("#digit")).to_have_text("17", timeout=10_000)
            strip = page.evaluate(COLUMN_INK, "places")
            first, last = sum(strip[:280]), sum(strip[560:])
            assert first > 0 and last > 0 and sum(strip[300:540]) < 0.05 * min(first, last), (first, last)
            boxes = page.evaluate(COLUMN_INK, "found")
            assert sum(boxes[100:180]) > 0 and sum(boxes[600:800]) > 0 and sum(boxes[320:520]) == 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "number-mode-places.png"))

            page.uncheck("#number-mode")
            draw_at(page, SEVEN, 0, 280)
            expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
            assert sum(page.evaluate(COLUMN_INK, "found")) > 0  # the one digit's box too
            page.set_input_files("#file", str(tmp_path / "notes.png"))
            expect(page.locator("#status")).to_contain_text("cannot be read as an image", timeout=10_000)
            expect(page.locator("#status")).to_contain_text("upload a PNG")
            page.set_input_files("#file", str(tmp_path / "blank.png"))
            expect(page.locator("#status")).to_contain_text("No digit found in blank.png", timeout=10_000)
            assert sum(page.evaluate(COLUMN_INK, "found")) == 0  # no box left from before
        finally:
            browser.close()
