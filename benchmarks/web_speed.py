"""How fast the static page (`lenet export --web`) answers in headless Chromium, and how big it is.

Exports the site into a temporary folder, opens it from a loopback http.server (every other
request blocked), and times, with performance.now() inside the page: the page ready after
navigation (model.js parsed), the page's warm-up readings (of a stroke on a hidden pad, so the
browser compiles the reader before the user draws), the first answer and each answer after it
(reading the pad and the forward pass), over golden drawings repeated.

    python benchmarks/web_speed.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_browser import CHROMIUM, FLAGS
from test_web import GOLDEN, Quiet, mouse_draw

from lenet.pretrained import bundled_model_path
from lenet.web import MODEL_SCRIPT, write_site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="times each golden drawing is drawn (default: 5)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        site = write_site(tmp, bundled_model_path())
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=tmp))
        server.paths = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
            page.goto(url)
            page.wait_for_function("window.lenetTimes && window.lenetTimes.ready !== null")
            for _ in range(args.rounds):
                for strokes, _digit in GOLDEN.values():
                    page.click("#clear")
                    mouse_draw(page, strokes)
                    page.wait_for_timeout(300)
            times = page.evaluate("() => window.lenetTimes")
            browser.close()
        server.shutdown()
    answers = times["answers"]
    print(f"site: {site.runtime_bytes / 1024:.0f} KB page and script + {site.model_bytes / 1024:.0f} KB "
          f"model ({MODEL_SCRIPT}) = {(site.runtime_bytes + site.model_bytes) / 1024:.0f} KB")
    print(f"page ready {times['ready']:.0f} ms after navigation (then {times.get('warmUp', 0):.0f} ms of warm-up "
          f"readings while idle); first answer {answers[0]:.1f} ms; "
          f"then median {statistics.median(answers[1:]):.1f} ms, min {min(answers[1:]):.1f}, "
          f"max {max(answers[1:]):.1f} over {len(answers) - 1} answers ({browser.version})")


if __name__ == "__main__":
    main()
