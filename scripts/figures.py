"""Draw the documentation's pictures again from the current bundled model, so they cannot go stale.

    python scripts/figures.py                  # confusion.png, mistakes.png, explain.png, and the page's screenshots
    python scripts/figures.py --no-browser     # without the screenshots (they need Chromium)

Each picture comes from the command a user runs: `lenet evaluate --report` (confusion.png,
mistakes.png), `lenet explain` (explain.png), and `lenet serve` in headless Chromium driven by
Playwright (page.png, inside-desktop.png, inside-phone.png). The commands' own output is printed,
to paste into docs/commands.md where it is quoted. learning.png and learning.gif come from a
training run (`lenet train --epochs 5 --snapshots`), not from the bundled model, and are left alone.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run"]
# Strokes on the 280x280 pad, as lists of points (the browser test draws the same digits).
THREE = [[(90, 60), (130, 40), (180, 50), (195, 90), (170, 125), (130, 135)],
         [(130, 135), (175, 145), (200, 185), (185, 225), (140, 240), (90, 225)]]
SEVEN = [[(70, 50), (210, 50), (180, 110), (150, 170), (125, 240)]]
DESKTOP = {"width": 1000, "height": 800}
PHONE = {"width": 390, "height": 844}


def lenet(*args: str) -> str:
    """Run the `lenet` command as a user would; its output, or a clear failure."""
    r = subprocess.run([sys.executable, "-m", "lenet", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"lenet {' '.join(args)} failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    print(f"$ lenet {' '.join(args)}\n{r.stdout}", end="")
    return r.stdout


def report_figures(docs: Path, data_dir: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lenet("evaluate", "--report", tmp, *(["--data-dir", data_dir] if data_dir else []))
        for name in ("confusion.png", "mistakes.png"):
            shutil.copyfile(Path(tmp) / name, docs / name)


def explain_figure(docs: Path) -> None:
    lenet("explain", "docs/examples/photo-9.jpg", "--output", os.path.relpath(docs / "explain.png", ROOT))


def start_server() -> tuple[subprocess.Popen, str]:
    """`lenet serve` on a free loopback port, once /health answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "lenet", "serve", "--port", str(port), "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("lenet serve did not start: " + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.2)


def draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=8)
        page.mouse.up()


def page_screenshots(docs: Path, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
                    page = browser.new_page(viewport=viewport)
                    page.goto(url)
                    expect(page.locator("#model")).to_contain_text("parameters")
                    draw(page, THREE)
                    expect(page.locator("#digit")).to_have_text("3", timeout=10_000)
                    expect(page.locator('.layer[data-name="c1"] canvas').first).to_be_visible()
                    if name == "desktop":
                        page.screenshot(path=str(docs / "page.png"), full_page=True)
                    # The inside panel for another digit, with one C3 map's kernel shown.
                    page.click("#clear")
                    draw(page, SEVEN)
                    expect(page.locator("#digit")).to_have_text("7", timeout=10_000)
                    page.locator('.layer[data-name="c3"] canvas').nth(5).click()
                    expect(page.locator("#kernel-caption")).to_contain_text("C3")
                    page.mouse.move(0, 0)
                    page.screenshot(path=str(docs / f"inside-{name}.png"), full_page=True)
                    print(f"wrote {docs / f'inside-{name}.png'}" + (" and page.png" if name == "desktop" else ""))
                    page.close()
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="folder to write the pictures to (default: docs/)")
    ap.add_argument("--data-dir", help="MNIST folder for lenet evaluate (default: as lenet finds it)")
    ap.add_argument("--chromium", default=os.environ.get("LENET_CHROMIUM", "/usr/bin/chromium"),
                    help="Chromium for the screenshots (default: $LENET_CHROMIUM or /usr/bin/chromium)")
    ap.add_argument("--no-browser", action="store_true", help="skip the page's screenshots")
    args = ap.parse_args()
    args.docs.mkdir(parents=True, exist_ok=True)
    report_figures(args.docs, args.data_dir)
    explain_figure(args.docs)
    if args.no_browser:
        return
    if not Path(args.chromium).exists():
        sys.exit(f"{args.chromium} not found: install Debian's chromium, or pass --no-browser "
                 "(page.png, inside-desktop.png and inside-phone.png were not drawn)")
    page_screenshots(args.docs, args.chromium)


if __name__ == "__main__":
    main()
