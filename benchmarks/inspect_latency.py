"""Inspect's latency on one session against a local `python app.py`: `python -m benchmarks.inspect_latency`.

Rows (median of --rounds x --repeats calls taken in turns, after warm-up calls; one 600x800 PFCN
test photo):
- Inspect through gradio_client, which downloads the five panels one after another;
- Inspect as a browser sees it: the answer, then the five panels fetched at once;
- a threshold change (no model call: the mask panel is redrawn from the session's last result).
A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from .latency import interleaved_ms
from .load import PFCN_TEST, free_port, start_app


def main(argv: list[str] | None = None) -> None:
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser(prog="python -m benchmarks.inspect_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, default=next(iter(sorted((PFCN_TEST / "images").glob("*.jpg"))), None))
    parser.add_argument("--rounds", type=int, default=5, help="turns over the three kinds of call")
    parser.add_argument("--repeats", type=int, default=2, help="calls of each kind per turn")
    args = parser.parse_args(argv)
    if args.photo is None or not args.photo.is_file():
        parser.error("no photo: pass --photo (the default is the first PFCN test photo in ../shared/data)")
    port = free_port()
    server = start_app(port)
    try:
        url = f"http://127.0.0.1:{port}/"
        downloading, answering = Client(url, verbose=False), Client(url, verbose=False, download_files=False)
        with httpx.Client() as http, ThreadPoolExecutor(5) as pool:
            def as_a_browser() -> None:
                *panels, _ = answering.predict(handle_file(str(args.photo)), 0.5, api_name="/inspect")
                list(pool.map(lambda panel: http.get(panel["url"]).raise_for_status(), panels))

            rows = {
                "Inspect, gradio_client (panels downloaded one by one)":
                    lambda: downloading.predict(handle_file(str(args.photo)), 0.5, api_name="/inspect"),
                "Inspect, answer + panels fetched at once (as a browser does)": as_a_browser,
                "threshold change (no model call)": lambda: downloading.predict(0.3, api_name="/inspect_threshold"),
            }
            results = interleaved_ms(rows, args.rounds, args.repeats, warmup=2)
    finally:
        server.kill()
    print(f"{args.photo.name}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"median of {args.rounds} x {args.repeats} calls taken in turns, one session\n")
    print("| call | ms |\n|---|---|")
    for name, ms in results.items():
        print(f"| {name} | {ms:.0f} |")


if __name__ == "__main__":
    main()
