"""Load test: N simultaneous browser sessions against a local `python app.py` for a bounded time.

    python -m benchmarks.load --sessions 8 --seconds 120

Each session works on its own photo (cropped to a width no other session uses) and its own
dataset zip, and checks that every answer is about its own data. Sessions speak the protocol as the
web page does (benchmarks.browser_client): each file is uploaded once, as a page uploads it when it
is chosen, and a call's time runs until its answer and the pictures it shows have arrived. At the
end the sessions close and the script checks that the server removed their download folders.
Prints errors, isolation violations and p50/p95 latency per endpoint.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from banet.image_io import working_size
from training.config import DATA_ROOT
from workbench.viewer import PANELS
from workbench.views import DISPLAY_SIDE

from .browser_client import App, Session

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


class User:
    """One browser tab: inspect, compose, compare and review, in a loop, checking answers are its own."""

    def __init__(self, number: int, folder: Path, photos: list[Path]) -> None:
        self.number = number
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

    async def call(self, session: Session, endpoint: str, *args, fetch: int = 0) -> list | None:
        """The answer of one call, its first `fetch` files fetched (as bytes) in its place; the time
        counts until they have arrived, as a page shows them."""
        start = time.perf_counter()
        try:
            answer = await session.call(endpoint, *args)
            return await session.fetch(*answer[:fetch]) + answer[fetch:]
        except Exception as e:  # noqa: BLE001 -- every failure is counted and reported
            self.errors.append(f"{endpoint}: {e.__class__.__name__}: {str(e)[:120]}")
            return None
        finally:
            self.latency[endpoint].append(time.perf_counter() - start)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.violations.append(what)

    def shows_own_sample(self, header: str) -> bool:
        return any(sample in header for sample in self.ids)

    async def run(self, app: App, deadline: float) -> None:
        async with Session(app) as session:
            archive = await session.upload(self.archive)
            result = await self.call(session, "refine_open", archive, "", f"load{self.number}", "all", 50, fetch=4)
            if result:
                self.check(self.shows_own_sample(result[5]), f"refine_open showed {result[5][:40]}")
            photo, full, mask = [await session.upload(p) for p in (self.photo, self.full, self.mask)]
            shown = working_size(800, self.width, DISPLAY_SIDE)[::-1]  # panels are drawn at display size
            step = 0
            while time.monotonic() < deadline:
                step += 1
                result = await self.call(session, "inspect", photo, 0.5, fetch=len(PANELS))
                if result:
                    self.check(Image.open(io.BytesIO(result[0])).size == shown, "inspect answered another photo")
                result = await self.call(session, "compose", "colour", "#00ff00", 12, None, fetch=1)
                if result:
                    self.check(Image.open(io.BytesIO(result[0])).size == (self.width, 800),
                               "compose used another photo")
                await self.call(session, "compare", full, mask, 0.5, fetch=2)
                result = await self.call(session, "refine_accept" if step % 3 == 0 else "refine_next", 50, fetch=4)
                if result:
                    self.check(self.shows_own_sample(result[5]), "the review queue showed another session's sample")


async def run_users(url: str, users: list[User], seconds: float) -> float:
    """Every user works until `seconds` from now, all at once; returns the seconds they took."""
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=None)) as http:
        app = await App.connect(http, url)
        started = time.monotonic()
        await asyncio.gather(*(u.run(app, started + seconds) for u in users))
        return time.monotonic() - started


def percentile_table(sessions: list[User]) -> str:
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
            sessions = [User(i, scratch_path, photos[3 * i:3 * i + 3]) for i in range(args.sessions)]
            before = time.process_time()
            elapsed = asyncio.run(run_users(f"http://127.0.0.1:{port}/", sessions, args.seconds))
            client_cpu = time.process_time() - before
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
          f"{len(leftover)} session download folders left after the sessions closed; the sessions themselves "
          f"used {client_cpu / elapsed / (os.cpu_count() or 1):.0%} of the machine's CPU")
    print(percentile_table(sessions))
    for line in (errors + violations)[:20]:
        print("  ", line)
    return 1 if errors or violations or leftover else 0


if __name__ == "__main__":
    sys.exit(main())
