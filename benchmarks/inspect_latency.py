"""Inspect's latency on one session against a local `python app.py`: `python -m benchmarks.inspect_latency`.

Rows (median of --rounds x --repeats calls taken in turns, after warm-up calls; one 600x800 PFCN
test photo):
- Inspect and a threshold change spoken as the web page speaks the protocol (upload, queue, event
  stream, the panels fetched at once: benchmarks.browser_client), the server's own time;
- Inspect through gradio_client, which downloads the five panels one after another;
- Inspect through gradio_client for the answer, then the five panels fetched at once;
- a threshold change through gradio_client (no model call: the mask panel is redrawn from the
  session's last result).
gradio_client polls for answers every 50 ms (gradio_client/utils.py, stream_sse_v1plus), so its rows
carry up to 50 ms per call that a browser does not wait. Where Debian's chromium and playwright are
installed, the same two actions are then timed in the browser itself: from the click (or the slider
step) until every panel it changes shows its new picture, median of 2 x --rounds x --repeats,
alternating two photos so that each answer is new. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from banet.upsampling import UPSAMPLING
from workbench.viewer import PANELS

from .browser_client import App, Session
from .latency import interleaved_ms
from .load import PFCN_TEST, free_port, start_app

CHROMIUM = Path("/usr/bin/chromium")
PANEL_IDS = [f"inspect-{name.replace(' ', '-')}" for name in PANELS]
# in the page: act, then wait until each panel in `ids` shows a loaded picture other than the one before
WAIT_FOR_PANELS = """async ([action, ids]) => {
  const before = ids.map(id => document.querySelector(`#${id} img`)?.src);
  const start = performance.now();
  if (action === "click") document.querySelector("#inspect-go").click();
  else { const slider = document.querySelector("#inspect-threshold input[type=range]");
         slider.value = action; slider.dispatchEvent(new Event("input", {bubbles: true})); }
  for (;;) {
    const images = ids.map(id => document.querySelector(`#${id} img`));
    if (images.every((img, i) => img && img.src !== before[i] && img.complete && img.naturalWidth > 0))
      return performance.now() - start;
    await new Promise(resolve => setTimeout(resolve, 1));
  }
}"""


def page_rows(url: str, photo: Path, loop: asyncio.AbstractEventLoop,
              http: httpx.AsyncClient) -> dict[str, Callable[[], object]]:
    """Inspect and a threshold change spoken as the web page speaks the protocol (browser_client),
    each call run to completion on `loop`: the server's own time, without a client's polling."""
    page = Session(loop.run_until_complete(App.connect(http, url)))

    async def inspect() -> None:
        answer = await page.call("inspect", await page.upload(photo), 0.5)
        await page.fetch(*answer[:len(PANELS)])

    async def threshold() -> None:
        await page.fetch((await page.call("inspect_threshold", 0.3))[0])

    return {"Inspect, as the page speaks the protocol (upload, answer, panels fetched at once)":
            lambda: loop.run_until_complete(inspect()),
            "threshold change, as the page speaks the protocol": lambda: loop.run_until_complete(threshold())}


def in_chromium(url: str, photos: list[Path], calls: int) -> dict[str, float]:
    """Median ms, in the page, of Inspect (click to five new panels) and of a threshold step (to a new
    mask panel); {} without chromium or playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if not CHROMIUM.is_file():
        return {}
    times: dict[str, list[float]] = {"Inspect in Chromium: click to five panels shown": [],
                                     "threshold step in Chromium: to the new mask panel shown": []}
    inspect_row, threshold_row = times
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        for call in range(calls + 2):  # the first two warm up
            page.locator("#inspect-photo input[type=file]").set_input_files(str(photos[call % 2]))
            page.wait_for_timeout(300)  # the upload settles before the click
            inspect_ms = page.evaluate(WAIT_FOR_PANELS, ["click", PANEL_IDS])
            threshold_ms = page.evaluate(WAIT_FOR_PANELS, [str(0.3 + 0.05 * (call % 4)), [PANEL_IDS[1]]])
            if call >= 2:
                times[inspect_row].append(inspect_ms)
                times[threshold_row].append(threshold_ms)
        browser.close()
    return {row: statistics.median(values) for row, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser(prog="python -m benchmarks.inspect_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=next(iter(sorted((PFCN_TEST / "images").glob("*.jpg"))), None))
    parser.add_argument("--rounds", type=int, default=5, help="turns over the kinds of call")
    parser.add_argument("--repeats", type=int, default=2, help="calls of each kind per turn")
    parser.add_argument("--upsampling", choices=UPSAMPLING, default=UPSAMPLING[0], help="the app's --upsampling")
    args = parser.parse_args(argv)
    if args.photo is None or not args.photo.is_file():
        parser.error("no photo: pass --photo (the default is the first PFCN test photo in ../shared/data)")
    port = free_port()
    server = start_app(port, args=("--upsampling", args.upsampling))
    try:
        url = f"http://127.0.0.1:{port}/"
        downloading, answering = Client(url, verbose=False), Client(url, verbose=False, download_files=False)
        loop, page_http = asyncio.new_event_loop(), httpx.AsyncClient(timeout=60)
        with httpx.Client() as http, ThreadPoolExecutor(5) as pool:
            def as_a_browser() -> None:
                *panels, _ = answering.predict(handle_file(str(args.photo)), 0.5, api_name="/inspect")
                list(pool.map(lambda panel: http.get(panel["url"]).raise_for_status(), panels))

            rows = page_rows(url, args.photo, loop, page_http) | {
                "Inspect, gradio_client (panels downloaded one by one)":
                    lambda: downloading.predict(handle_file(str(args.photo)), 0.5, api_name="/inspect"),
                "Inspect, gradio_client answer + panels fetched at once": as_a_browser,
                "threshold change, gradio_client (no model call)":
                    lambda: downloading.predict(0.3, api_name="/inspect_threshold"),
            }
            results = interleaved_ms(rows, args.rounds, args.repeats, warmup=2)
        loop.run_until_complete(page_http.aclose())
        others = [p for p in sorted(args.photo.parent.glob("*.jpg")) if p != args.photo]
        if others:  # the browser alternates two photos, so that each answer is new
            results |= in_chromium(url, [args.photo, others[0]], 2 * args.rounds * args.repeats)
    finally:
        server.kill()
    print(f"{args.photo.name}, {args.upsampling} upsampling; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; "
          f"median of {args.rounds} x {args.repeats} calls taken in turns, one session\n")
    print("| call | ms |\n|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.0f} |")


if __name__ == "__main__":
    main()
