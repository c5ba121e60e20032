"""Load test: N simultaneous gradio_client sessions against a local `python app.py` for a bounded time.

    python -m benchmarks.load --sessions 8 --seconds 120

Each session works on its own photo (cropped to a width no other session uses) and its own
dataset zip, and checks that every answer is about its own data. At the end the sessions close
and the script checks that the server removed their download folders. Prints errors, isolation
violations and p50/p95 latency per endpoint.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from banet.image_io import working_size
from training.config import DATA_ROOT
from workbench.views import DISPLAY_SIDE

ROOT = Path(__file__).resolve().parents[1]
PFCN_TEST = DATA_ROOT / "pfcn" / "test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env: dict[str, str] | None = None, timeout: float = 120,
              args: tuple[str, ...] = ()) -> subprocess.Popen:
    """`python app.py *args` on 127.0.0.1:port, returned once it accepts connections."""
    env = {**os.environ, **(env or {}), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"the app did not start within {timeout:.0f} s")


class Session(threading.Thread):
    """One user: inspect, compose, compare and review, in a loop, checking answers are its own."""

    def __init__(self, number: int, url: str, folder: Path, photos: list[Path], deadline: float) -> None:
        super().__init__(name=f"session-{number}")
        self.number, self.url, self.deadline = number, url, deadline
        self.width = 600 - 8 * number  # no other session sends a photo of this width
        self.photo = folder / f"photo{number}.png"
        Image.open(photos[0]).convert("RGB").crop((0, 0, self.width, 800)).save(self.photo)
        self.full, self.mask = photos[0], photos[0].parents[1] / "masks" / f"{photos[0].stem}.png"
        self.archive = folder / f"set{number}.zip"
        self.ids = {f"s{number}_{p.stem}" for p in photos}
        with zipfile.ZipFile(self.archive, "w") as zf:
            for p in photos:
                zf.write(p, f"images/s{number}_{p.name}")
                zf.write(p.parents[1] / "masks" / f"{p.stem}.png", f"masks/s{number}_{p.stem}.png")
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.violations: list[str] = []

    def call(self, client, endpoint: str, *args):
        start = time.perf_counter()
        try:
            return client.predict(*args, api_name=f"/{endpoint}")
        except Exception as e:  # noqa: BLE001 -- every failure is counted and reported
            self.errors.append(f"{endpoint}: {e.__class__.__name__}: {str(e)[:120]}")
            return None
        finally:
            self.latency[endpoint].append(time.perf_counter() - start)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.violations.append(what)

    def run(self) -> None:
        from gradio_client import Client, handle_file

        client = Client(self.url, verbose=False)
        result = self.call(client, "refine_open", handle_file(str(self.archive)), "", f"load{self.number}", "all", 50)
        if result:
            self.check(result[5].split("**")[1] in self.ids, f"refine_open showed {result[5][:40]}")
        step = 0
        while time.monotonic() < self.deadline:
            step += 1
            result = self.call(client, "inspect", handle_file(str(self.photo)), 0.5)
            if result:
                shown = working_size(800, self.width, DISPLAY_SIDE)[::-1]  # panels are drawn at display size
                self.check(Image.open(result[0]).size == shown, "inspect answered another photo")
            result = self.call(client, "compose", "colour", "#00ff00", 12, None)
            if result:
                self.check(Image.open(result[0]).size == (self.width, 800), "compose used another photo")
            self.call(client, "compare", handle_file(str(self.full)), handle_file(str(self.mask)), 0.5)
            result = self.call(client, "refine_accept" if step % 3 == 0 else "refine_next", 50)
            if result:
                self.check(result[5].split("**")[1] in self.ids, "the review queue showed another session's sample")
        client.close()


def percentile_table(sessions: list[Session]) -> str:
    merged: dict[str, list[float]] = defaultdict(list)
    for s in sessions:
        for endpoint, values in s.latency.items():
            merged[endpoint] += values
    lines = ["| endpoint | calls | p50 ms | p95 ms |", "|---|---|---|---|"]
    for endpoint, values in sorted(merged.items()):
        p50, p95 = np.percentile(np.array(values) * 1000, [50, 95])
        lines.append(f"| {endpoint} | {len(values)} | {p50:.0f} | {p95:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120, help="how long the sessions keep working")
    parser.add_argument("--data", type=Path, default=PFCN_TEST, help="images/ + masks/ folder of photos")
    args = parser.parse_args(argv)
    photos = sorted((args.data / "images").glob("*.jpg"))
    if len(photos) < 3 * args.sessions:
        parser.error(f"need {3 * args.sessions} photos with masks in {args.data}")

    with tempfile.TemporaryDirectory(prefix="banet-load-") as scratch:
        scratch_path = Path(scratch)
        server_tmp = scratch_path / "server-tmp"
        server_tmp.mkdir()
        port = free_port()
        server = start_app(port, {"TMPDIR": str(server_tmp)})
        try:
            deadline = time.monotonic() + args.seconds
            sessions = [Session(i, f"http://127.0.0.1:{port}/", scratch_path, photos[3 * i:3 * i + 3], deadline)
                        for i in range(args.sessions)]
            started = time.monotonic()
            for s in sessions:
                s.start()
            for s in sessions:
                s.join()
            elapsed = time.monotonic() - started
            downloads = server_tmp / "banet-workbench" / "gradio"  # the server's Gradio caches, one per server
            leftover = []
            for _ in range(30):  # unload runs when each session's heartbeat ends
                leftover = [p.name for p in downloads.glob("*/banet-downloads/*/*")]
                if not leftover:
                    break
                time.sleep(1)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    errors = [e for s in sessions for e in s.errors]
    violations = [v for s in sessions for v in s.violations]
    calls = sum(len(v) for s in sessions for v in s.latency.values())
    print(f"{args.sessions} sessions for {elapsed:.0f} s against python app.py on {platform.machine()}, "
          f"{os.cpu_count()} cores: {calls} calls, {len(errors)} errors, {len(violations)} isolation violations, "
          f"{len(leftover)} session download folders left after the sessions closed")
    print(percentile_table(sessions))
    for line in (errors + violations)[:20]:
        print("  ", line)
    return 1 if errors or violations or leftover else 0


if __name__ == "__main__":
    sys.exit(main())
