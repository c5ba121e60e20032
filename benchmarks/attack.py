"""Hostile visitors against `python app.py` on the loopback address: each attack of issue 12, bounded.

    python -m benchmarks.attack [--only NAME ...]

Starts the app with its own workspace and temporary folder, runs each attack with a time limit,
and prints a table: the answer, its time, the server's peak memory above idle during the attack
(resident set of the server and its children, from /proc: Linux only) and the disk the server's
folders use after it. Then it closes every session and prints the disk left. Targets (issue 12):
every answer within 10 s, peak memory at most 1 GB above idle, temporary disk back to idle once the
sessions end, nothing lost.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from benchmarks.load import PFCN_TEST, ROOT, free_port, start_app
from data_tools.dataset import Dataset, sha256_bytes
from workbench.disk import MB, used_bytes

TIMEOUT = 120  # seconds an attack may take before it counts as unanswered
CACHE_MB = 256  # the server's budget for Gradio's cache here (4096 by default): the upload flood reaches it
ATTACKS: dict[str, Callable[[Target], str]] = {}


def attack(function: Callable[[Target], str]) -> Callable[[Target], str]:
    ATTACKS[function.__name__.replace("_", "-")] = function
    return function


# --- files an attacker sends ----------------------------------------------------------------

def png_bytes(width: int, height: int, colour_type: int = 0, bit_depth: int = 1, fill: int = 0) -> bytes:
    """A PNG of one colour (every byte `fill`) of any size, written row by row: small to send, huge once decoded."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\0" + bytes([fill]) * ((width * channels * bit_depth + 7) // 8)
    deflate = zlib.compressobj(6)
    data = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def supervisely_bitmap(png: bytes) -> str:
    return json.dumps({"objects": [{"classTitle": "person", "geometryType": "bitmap",
                                    "bitmap": {"data": base64.b64encode(zlib.compress(png)).decode(),
                                               "origin": [0, 0]}}]})


# --- the server and its measurements --------------------------------------------------------

def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        todo += children.get(current, [])
    return total


class Target:
    """`python app.py` with its own folders, a memory sampler, and clients that download elsewhere."""

    def __init__(self, scratch: Path) -> None:
        self.scratch, self.files = scratch, scratch / "attacker"
        self.server_dirs = [scratch / "workspace", scratch / "gradio", scratch / "jobs", scratch / "tmp"]
        for folder in (self.files, scratch / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {"BANET_WORKSPACE": str(scratch / "workspace"), "TMPDIR": str(scratch / "tmp")}
        self.clients: list = []
        self.start()

    def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = start_app(self.port, self.env, args=("--cache-disk-mb", str(CACHE_MB)))
        time.sleep(3)  # the default weights and the first ONNX export
        self.idle = tree_rss(self.server.pid)
        self.peak = self.idle
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self._sampling and self.server.poll() is None:
            self.peak = max(self.peak, tree_rss(self.server.pid))
            time.sleep(0.05)

    def kill(self) -> None:
        self._sampling = False
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()

    def client(self):
        from gradio_client import Client

        client = Client(self.url, verbose=False, download_files=self.files / "downloads")
        self.clients.append(client)
        return client

    def disk(self) -> int:
        return sum(used_bytes(folder) for folder in self.server_dirs)

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.files / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path


def ask(client, *args, api_name: str, timeout: float = TIMEOUT) -> str:
    """The app's answer: 'ok' or its error message (its first line, shortened)."""
    from gradio_client.exceptions import AppError

    job = client.submit(*args, api_name=api_name)
    try:
        job.result(timeout=timeout)
        return "ok"
    except AppError as e:
        return "error: " + str(e).splitlines()[0][:110]
    except TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except Exception as e:  # the upload itself refused, a dropped connection
        return f"refused: {e.__class__.__name__}: {str(e).splitlines()[0][:90] if str(e) else ''}"


def photos(count: int) -> list[Path]:
    return sorted((PFCN_TEST / "images").glob("*.jpg"))[:count]


def dataset_zip(target: Target, name: str, count: int = 3) -> Path:
    path = target.files / name
    with zipfile.ZipFile(path, "w") as zf:
        for image in photos(count):
            zf.write(image, f"images/{image.name}")
            zf.write(image.parents[1] / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
    return path


def open_dataset(client, archive: Path, key: str = "") -> str:
    from gradio_client import handle_file

    return ask(client, handle_file(str(archive)), "", key, "all", 50, api_name="/refine_open")


# --- the attacks ----------------------------------------------------------------------------

@attack
def inspect_63_mp_png(target: Target) -> str:
    from gradio_client import handle_file

    path = target.file("huge.png", png_bytes(7936, 7936))
    return f"{path.stat().st_size // 1024} KB PNG: " + ask(target.client(), handle_file(str(path)), 0.5,
                                                            api_name="/inspect")


@attack
def inspect_two_31_mp_jpegs_at_once(target: Target) -> str:
    from gradio_client import handle_file

    path = target.files / "31mp.jpg"
    Image.new("RGB", (6800, 4600), (120, 90, 60)).save(path, quality=90)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(
        ask(target.client(), handle_file(str(path)), 0.5, api_name="/inspect"))) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return " / ".join(answers)


def _compare(target: Target, annotation: Path) -> str:
    from gradio_client import handle_file

    return ask(target.client(), handle_file(str(photos(1)[0])), handle_file(str(annotation)), 0.5,
               api_name="/compare")


@attack
def compare_with_a_32768_bitmap(target: Target) -> str:
    path = target.file("bitmap.json", supervisely_bitmap(png_bytes(32768, 32760)))
    return f"{path.stat().st_size // 1024} KB JSON: " + _compare(target, path)


@attack
def compare_with_an_rgba_bitmap(target: Target) -> str:
    path = target.file("rgba.json", supervisely_bitmap(png_bytes(16384, 16384, colour_type=6, bit_depth=8)))
    return f"{path.stat().st_size // 1024} KB JSON: " + _compare(target, path)


@attack
def compare_with_a_40_mb_labelme_json(target: Target) -> str:
    shapes = [{"label": "person", "points": [[1, 1], [2, 1], [2, 2]]}] * 700_000
    return _compare(target, target.file("labelme.json", json.dumps({"shapes": shapes})))


@attack
def upload_over_the_size_limit(target: Target) -> str:
    import httpx

    path = target.file("96mb.json", b" " * (96 * MB))
    with open(path, "rb") as f:  # straight to the upload route, past the client's own check
        answer = httpx.post(target.url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=TIMEOUT)
    return f"HTTP {answer.status_code}: {answer.text[:80]}"


@attack
def upload_flood(target: Target) -> str:
    import httpx

    answers = []
    for _ in range(CACHE_MB // 40 + 3):  # uploads no handler ever reads, each different (Gradio keeps one of twins)
        path = target.file("40mb.bin", os.urandom(40 * MB))
        with open(path, "rb") as f:
            answers.append(httpx.post(target.url + "gradio_api/upload", files={"files": (path.name, f)},
                                      timeout=TIMEOUT).status_code)
    return f"{len(answers)} uploads of 40 MB: " + ", ".join(str(a) for a in answers)


@attack
def refine_zip_holding_a_1_gb_json(target: Target) -> str:
    path = target.files / "1gb-json.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("big.json", "w", force_zip64=True) as f:
        for _ in range(1024):
            f.write(b" " * MB)
    return f"{path.stat().st_size // 1024} KB zip: " + open_dataset(target.client(), path)


@attack
def refine_zip_with_a_256_mb_manifest(target: Target) -> str:
    path = dataset_zip(target, "manifest.zip", 1)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("manifest.jsonl", "w") as f:
        for _ in range(256):
            f.write(b"\n" * MB)
    return f"{path.stat().st_size // 1024} KB zip: " + open_dataset(target.client(), path)


@attack
def refine_zip_of_three_63_mp_samples(target: Target) -> str:
    path = target.files / "three-63mp.zip"
    image, mask = png_bytes(7936, 7936, colour_type=2, bit_depth=8, fill=128), png_bytes(7936, 7936, fill=255)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"images/s{i}.png", image)
            zf.writestr(f"masks/s{i}.png", mask)
    return f"{path.stat().st_size // 1024} KB zip: " + open_dataset(target.client(), path)


@attack
def refine_edit_with_a_118_mp_layer(target: Target) -> str:
    from gradio_client import handle_file

    client = target.client()
    opened = open_dataset(client, dataset_zip(target, "edit.zip"))
    layer = target.file("layer.png", png_bytes(10880, 10880, colour_type=6, bit_depth=8))
    edit = {"background": None, "layers": [handle_file(str(layer))], "composite": None}
    return f"open {opened}; {layer.stat().st_size // 1024} KB layer: " + ask(client, 50, edit, api_name="/refine_edit")


@attack
def sessions_that_never_close(target: Target) -> str:
    from gradio_client import handle_file

    before = tree_rss(target.server.pid)
    answers = [ask(target.client(), handle_file(str(photo)), 0.5, api_name="/inspect") for photo in photos(10)]
    grown = (tree_rss(target.server.pid) - before) / MB
    return f"{answers.count('ok')} of 10 inspected; server grew {grown:.0f} MB, {grown / 10:.1f} MB per session"


@attack
def server_folder_from_a_client(target: Target) -> str:
    answer = ask(target.client(), None, str(PFCN_TEST.parent), "", "all", 50, api_name="/refine_open")
    refused = subprocess.run([sys.executable, "app.py", "--allow-server-folders", "--host", "0.0.0.0"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    return f"{answer}; --allow-server-folders on 0.0.0.0: exit {refused.returncode}"


@attack
def two_fine_tunings_at_once(target: Target) -> str:
    clients = [target.client(), target.client()]
    for number, client in enumerate(clients):
        open_dataset(client, dataset_zip(target, f"tune{number}.zip", 4))
    answers: list[str] = []
    threads = [threading.Thread(target=lambda c=c: answers.append(ask(c, 4000, 0.25, api_name="/retrain_start")))
               for c in clients]
    [t.start() for t in threads]
    [t.join() for t in threads]
    nan = ask(clients[0], float("nan"), 0.25, api_name="/retrain_start")
    for client in clients:
        ask(client, api_name="/retrain_cancel")
    return f"{answers.count('ok')} of 2 started; NaN iterations: {nan}"


@attack
def server_killed_during_fine_tuning(target: Target) -> str:
    client = target.client()
    open_dataset(client, dataset_zip(target, "killed.zip", 4))
    started = ask(client, 4000, 0.25, api_name="/retrain_start")
    time.sleep(3)
    target.kill()
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", "training.train"], capture_output=True, text=True).stdout.split()
    target.start()
    return f"job {started}; training processes left after SIGKILL: {len(left)}"


@attack
def server_killed_during_accepts(target: Target) -> str:
    archive, key, lost = dataset_zip(target, "accepts.zip", 6), "attack-browser", []
    for round_ in range(3):
        client = target.client()
        open_dataset(client, archive, key)
        accepting = threading.Thread(target=lambda: [ask(client, 50, api_name="/refine_accept") for _ in range(4)])
        accepting.start()
        time.sleep(1.5 + round_)
        target.kill()
        accepting.join(timeout=30)
        target.start()
    for manifest in (target.scratch / "workspace").rglob("manifest.jsonl"):
        dataset = Dataset.open(manifest.parent)
        for sample in dataset:
            path = dataset.mask_path(sample)
            if not path.is_file() or sha256_bytes(path.read_bytes()) != sample.history[-1].sha256:
                lost.append(sample.id)
    return f"3 kills; samples whose mask differs from the manifest's record: {len(lost)}"


@attack
def export_leaks(target: Target) -> str:
    import httpx

    from gradio_client import Client

    client = Client(target.url, verbose=False, download_files=False)  # answers with the server's URLs
    open_dataset(client, dataset_zip(target, "export.zip"))
    url = client.predict("dataset", api_name="/export_dataset")["url"]
    local = target.file("exported.zip", httpx.get(url).content)
    with zipfile.ZipFile(local) as zf:
        manifest = zf.read("manifest.jsonl").decode()
    paths = [s for s in (json.loads(line)["source"] for line in manifest.splitlines()) if s.startswith("/")]
    client.close()
    deadline = time.monotonic() + 30  # unload runs when the session's heartbeat ends
    while (status := httpx.get(url).status_code) == 200 and time.monotonic() < deadline:
        time.sleep(1)
    return f"absolute paths in the exported manifest: {len(paths)}; export URL after the session closed: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.attack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(ATTACKS), help="run only these attacks")
    args = parser.parse_args(argv)
    if not PFCN_TEST.is_dir():
        parser.error(f"needs the PFCN test photos at {PFCN_TEST}")
    chosen = args.only or list(ATTACKS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="banet-attack-") as scratch:
        target = Target(Path(scratch))
        idle_disk = target.disk()
        try:
            for name in chosen:
                server, started = target.server, time.monotonic()
                target.peak = tree_rss(server.pid)
                answer = ATTACKS[name](target)
                seconds = time.monotonic() - started
                peak = f"{(target.peak - target.idle) / MB:.0f}" if target.server is server else "(restarted)"
                rows.append((name, answer, seconds, peak, target.disk() / MB))
                print(f"{name}: {answer} ({seconds:.1f} s)", file=sys.stderr)
            for client in target.clients:
                client.close()
            time.sleep(10)  # unload runs when each session's heartbeat ends
            uploads = used_bytes(Path(scratch) / "workspace")
            left = target.disk() - uploads
        finally:
            target.kill()
    print(f"python app.py --cache-disk-mb {CACHE_MB} on 127.0.0.1, {platform.machine()}, {os.cpu_count()} cores; idle server "
          f"{target.idle / MB:.0f} MB resident, {idle_disk / MB:.1f} MB on disk")
    print("| attack | answer | seconds | peak MB above idle | server disk MB after |")
    print("|---|---|---|---|---|")
    for name, answer, seconds, peak, disk in rows:
        print(f"| {name} | {answer} | {seconds:.1f} | {peak} | {disk:.1f} |")
    print(f"\nAfter every session closed: {left / MB:.1f} MB of temporary files and downloads, "
          f"{uploads / MB:.1f} MB of uploaded datasets (kept for reopening, within the disk budgets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
