"""Limits that keep a public server up: pixel, file, JSON and disk budgets, crash-safe decisions, jobs."""
from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from banet.image_io import image_size, load_rgb
from data_tools import review
from data_tools.archive import ArchiveError, open_archive
from data_tools.dataset import MANIFEST, Dataset, DatasetError
from data_tools.export import export_zip
from data_tools.importers import import_into, mask_from_annotation_file, read_folders, read_labelme

from .helpers import copy_pairs, zip_pairs


@pytest.fixture()
def dataset(pfcn_paths, tmp_path) -> Dataset:
    """Three real samples imported into a fresh dataset."""
    photos = copy_pairs(pfcn_paths[:3], tmp_path / "src")
    dataset = Dataset.create(tmp_path / "ds")
    import_into(dataset, read_folders(photos / "images", photos / "masks"))
    return dataset


# --- settings -------------------------------------------------------------------------------

def test_server_folders_are_refused_unless_the_app_binds_to_loopback():
    from workbench.settings import Settings, is_loopback, parse_args

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    assert parse_args(["--allow-server-folders"]).allow_server_folders
    with pytest.raises(ValueError, match="refused when binding to 0.0.0.0"):
        Settings(host="0.0.0.0", allow_server_folders=True)
    assert not parse_args([]).allow_server_folders  # off unless asked for


# --- pixels ---------------------------------------------------------------------------------

def test_a_large_photo_is_read_at_the_working_size(pfcn_paths, tmp_path):
    big = cv2.resize(load_rgb(pfcn_paths[0]), (2400, 3200), interpolation=cv2.INTER_CUBIC)
    for suffix in (".jpg", ".png"):
        path = tmp_path / f"big{suffix}"
        Image.fromarray(big).save(path)
        small = load_rgb(path, max_side=800)
        assert small.shape == (800, 600, 3)
        reference = cv2.resize(big, (600, 800), interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - reference).mean() < 3  # the same picture, not a crop
    assert load_rgb(pfcn_paths[0], max_side=2048).shape == (800, 600, 3)  # a smaller photo is left as it is


def test_image_size_reads_the_header_with_exif_rotation(pfcn_paths, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: width and height swap once applied
    for suffix in (".jpg", ".png"):
        path = tmp_path / f"rotated{suffix}"
        Image.open(pfcn_paths[0]).save(path, exif=exif)
        assert image_size(path) == load_rgb(path).shape[:2] == (600, 800)
        assert load_rgb(path, max_side=400).shape[:2] == (300, 400)  # rotated after a reduced decode too


def test_a_bitmap_larger_than_its_photo_is_refused_before_decoding(tmp_path):
    huge = cv2.imencode(".png", np.zeros((20000, 20000), np.uint8))[1].tobytes()  # 400 MP once decoded
    annotation = {"objects": [{"classTitle": "person", "geometryType": "bitmap",
                               "bitmap": {"data": base64.b64encode(zlib.compress(huge)).decode(), "origin": [0, 0]}}]}
    path = tmp_path / "bomb.json"
    path.write_text(json.dumps(annotation))
    with pytest.raises(ValueError, match="bitmap is 20000x20000, larger than the image"):
        mask_from_annotation_file(path, 800, 600)


def test_an_edit_layer_larger_than_a_photo_is_refused_before_decoding(tmp_path):
    import gradio as gr

    from workbench.inputs import EditInput

    editor = EditInput(type="numpy")
    editor.max_pixels = 2048**2
    layer = io.BytesIO()
    Image.new("RGBA", (4000, 4000)).save(layer, format="PNG")
    with pytest.raises(gr.Error, match="4000x4000, larger than any photo"):
        editor.convert_and_format_image(layer.getvalue())
    small = io.BytesIO()
    Image.new("RGBA", (600, 800)).save(small, format="PNG")
    assert editor.convert_and_format_image(small.getvalue()).shape == (800, 600, 4)


def test_an_import_shrinks_large_photos_and_records_it(pfcn_paths, tmp_path):
    src = copy_pairs(pfcn_paths[:2], tmp_path / "src")
    dataset = Dataset.create(tmp_path / "ds")
    report = import_into(dataset, read_folders(src / "images", src / "masks"), max_side=400)
    assert sorted(report.shrunk) == sorted(p.stem for p in pfcn_paths[:2]) and "shrunk" in report.summary()
    for sample in dataset:
        assert dataset.read_image(sample).shape[:2] == dataset.read_mask(sample).shape == (400, 300)
        assert "shrunk from 600x800" in sample.history[0].note


# --- file sizes -----------------------------------------------------------------------------

def test_annotation_files_and_manifests_over_the_limit_are_refused_unread(dataset, tmp_path, monkeypatch):
    folder = tmp_path / "labelme"
    folder.mkdir()
    (folder / "big.json").write_text(json.dumps({"shapes": [], "pad": "x" * 5000}))
    monkeypatch.setattr("data_tools.importers.MAX_JSON_BYTES", 4096)
    [problem] = list(read_labelme(folder))
    assert problem.message.startswith("larger than")
    manifest = dataset.root / MANIFEST
    manifest.write_text(manifest.read_text() + "\n" * 10_000)  # blank lines: read a line at a time
    assert len(Dataset.open(dataset.root)) == 3
    monkeypatch.setattr("data_tools.dataset.MAX_MANIFEST_BYTES", 4096)
    with pytest.raises(DatasetError, match="manifest.jsonl: larger than"):
        Dataset.open(dataset.root)


# --- disk -----------------------------------------------------------------------------------

def test_an_archive_that_fails_leaves_nothing_and_one_that_opens_keeps_one_copy(pfcn_paths, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        for image in pfcn_paths[:3]:
            zf.writestr(f"images/{image.name}", b"not a photo")
            zf.write(image.parents[1] / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
    with pytest.raises(ArchiveError, match="nothing could be imported"):
        open_archive(bad, tmp_path / "work-bad")
    assert not (tmp_path / "work-bad").exists()
    with pytest.raises(ArchiveError, match="more than 0 MB uncompressed"):
        open_archive(zip_pairs(pfcn_paths[:3], tmp_path / "good.zip"), tmp_path / "work-big", max_bytes=1000)
    assert not (tmp_path / "work-big").exists()
    dataset, _, report = open_archive(tmp_path / "good.zip", tmp_path / "work")
    assert len(report.imported) == 3 and sorted(p.name for p in (tmp_path / "work").iterdir()) == ["dataset"]


def test_disk_budgets_evict_the_least_recently_used_uploads(tmp_path):
    from workbench.disk import DiskFull, make_room, used_bytes

    def upload(browser: str, name: str, size: int, age: float) -> Path:
        folder = tmp_path / browser / name
        (folder / "dataset").mkdir(parents=True)
        (folder / "dataset" / "manifest.jsonl").write_bytes(b"x" * size)
        for path in (folder, folder / "dataset", folder / "dataset" / "manifest.jsonl"):
            os.utime(path, (time.time() - age, time.time() - age))
        return folder

    old, new = upload("me", "old", 400, 500), upload("me", "new", 400, 100)
    other_idle, other_busy = upload("you", "idle", 1000, 7200), upload("you", "busy", 1000, 10)
    removed = make_room(tmp_path, tmp_path / "me" / "next", 300, per_browser=1000, total=10_000, idle_seconds=3600)
    assert removed == [old] and new.exists()  # the same browser's oldest upload makes room first
    removed = make_room(tmp_path, tmp_path / "me" / "next", 300, per_browser=1000, total=2500, idle_seconds=3600)
    assert removed == [other_idle] and other_busy.exists() and used_bytes(tmp_path) == 1400
    with pytest.raises(DiskFull, match="full"):  # only an upload in use is left to take
        make_room(tmp_path, tmp_path / "me" / "next", 300, per_browser=1000, total=1500, idle_seconds=3600)
    with pytest.raises(DiskFull, match="limit per visitor"):
        make_room(tmp_path, tmp_path / "me" / "next", 2000, per_browser=1000, total=10_000, idle_seconds=3600)


# --- decisions ------------------------------------------------------------------------------

def test_a_crash_before_the_manifest_is_written_keeps_the_original_mask(dataset):
    sample = next(iter(dataset))
    original = dataset.read_mask(sample)
    dataset.set_mask(sample.id, np.zeros_like(original), "accept")  # the new mask is on disk; then the crash
    reopened = Dataset.open(dataset.root)
    assert np.array_equal(reopened.read_mask(reopened[sample.id]), original)
    assert review.status(reopened[sample.id]) == "unreviewed"
    review.decide(reopened, sample.id, "accept", np.zeros_like(original), {"method": "test"})
    final = Dataset.open(dataset.root)
    assert not final.read_mask(final[sample.id]).any() and review.status(final[sample.id]) == "accepted"
    on_disk = {p.name for p in (dataset.root / "masks").iterdir()}
    assert on_disk == {Path(s.mask).name for s in final}  # the replaced file went once the manifest named the new


def test_a_full_disk_fails_a_decision_without_changing_anything(dataset, monkeypatch):
    import errno

    sample = next(iter(dataset))
    before = (dataset.root / MANIFEST).read_bytes(), dataset.mask_path(sample).read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("data_tools.atomic.os.fsync", full)
    with pytest.raises(OSError):
        review.decide(dataset, sample.id, "accept", np.zeros((800, 600), np.uint8), {})
    monkeypatch.undo()
    reopened = Dataset.open(dataset.root)
    assert ((dataset.root / MANIFEST).read_bytes(), reopened.mask_path(reopened[sample.id]).read_bytes()) == before
    from workbench.refine_tab import disk_message

    assert "disk is full" in disk_message(OSError(errno.ENOSPC, "No space left on device"), "The decision was not saved")


def test_exported_manifests_hold_no_server_paths(dataset, tmp_path):
    sample = next(iter(dataset))
    sample.source = "/srv/workspace/browser-key/abc/raw/masks/x.png"  # as datasets imported before kept them
    dataset.save()
    assert all(not s.source.startswith("/") for s in Dataset.open(dataset.root) if s.id != sample.id)
    export_zip(dataset, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        manifest = zf.read(MANIFEST).decode()
    assert str(tmp_path) not in manifest and "/srv/" not in manifest and '"source": "masks/x.png"' in manifest


# --- jobs -----------------------------------------------------------------------------------

class _Job:
    """Stands in for FineTuneJob in the registry: running until told otherwise."""

    def __init__(self, folder: Path, max_seconds: float) -> None:
        self.folder, self.max_seconds, self.done = folder, max_seconds, threading.Event()
        time.sleep(0.05)  # a slow constructor widens the window two sessions could both pass

    def start(self) -> None:
        self.folder.mkdir(parents=True)

    def status(self):
        return type("Status", (), {"running": not self.done.is_set()})()

    def cancel(self) -> None:
        self.done.set()

    def wait(self, timeout=None):
        return self.status()


def test_two_sessions_starting_at_once_get_one_job(tmp_path):
    from training.job import JobError
    from workbench.jobs import JobRegistry

    registry, answers = JobRegistry(tmp_path / "jobs", max_running=1, max_seconds=60), []
    barrier = threading.Barrier(4)

    def session(owner: str) -> None:
        barrier.wait()
        try:
            answers.append(registry.start(owner, _Job))
        except JobError as e:
            answers.append(e)

    threads = [threading.Thread(target=session, args=(f"s{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(isinstance(a, str) for a in answers) == 1
    started = next(a for a in answers if isinstance(a, str))
    owner = next(f"s{i}" for i in range(4) if registry.get(started, f"s{i}"))
    assert registry.get(started, "someone else") is None
    registry.end_session(owner)
    assert not (tmp_path / "jobs" / started).exists()


def test_a_job_past_its_time_limit_is_stopped_and_says_so(pfcn_paths, tmp_path):
    from banet import DEFAULT_MODEL
    from training.job import FineTuneJob

    photos = copy_pairs(pfcn_paths[:4], tmp_path / "src")
    data = Dataset.create(tmp_path / "ds")
    import_into(data, read_folders(photos / "images", photos / "masks"))
    job = FineTuneJob(tmp_path / "job", data, DEFAULT_MODEL, 4000, 0.25, max_seconds=3)
    job.start()
    status = job.wait(timeout=120)
    assert status.state == "failed" and "time limit" in status.message
    with pytest.raises(ValueError, match="whole number from 1"):
        FineTuneJob(tmp_path / "nan", data, DEFAULT_MODEL, float("nan"))


def test_training_processes_die_with_the_server_and_orphans_are_killed_at_start_up(tmp_path):
    from training.job import PID_FILE, kill_orphans

    server = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from training.job import _die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)  # training.train'],\n"
        "                         start_new_session=True, preexec_fn=_die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n")], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    child = int(server.stdout.readline())
    server.send_signal(signal.SIGKILL)
    server.wait()
    assert _gone(child)

    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # training.train"],
                              start_new_session=True)
    while not Path(f"/proc/{orphan.pid}/cmdline").read_bytes():  # empty until its exec has finished
        time.sleep(0.01)
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / PID_FILE).write_text(str(orphan.pid))
    assert kill_orphans(tmp_path) == 1
    assert orphan.wait(timeout=10) == -signal.SIGKILL


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return True  # a zombie: dead, waiting for init to reap it
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


def test_fine_tuning_refuses_iterations_that_are_not_a_number():
    import gradio as gr

    from banet import DEFAULT_MODEL
    from workbench.retrain_tab import JobHandlers
    from workbench.review_session import ReviewSession

    request = type("Request", (), {"session_hash": "s"})()
    handlers = JobHandlers(None)  # refused before any job is made
    session = ReviewSession(Path("unused"), DEFAULT_MODEL, "unused", ranked=[])
    for iterations, held_out in ((float("nan"), 0.2), (float("inf"), 0.2), (100, float("nan"))):
        with pytest.raises(gr.Error, match="Iterations must be a number"):
            handlers.start(session, iterations, held_out, DEFAULT_MODEL, request)


def test_uploads_past_the_cache_budget_are_refused(tmp_path):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from workbench.disk import UploadBudget

    async def upload(request: Request) -> PlainTextResponse:  # keeps what it is sent, as Gradio's route does
        (tmp_path / f"{len(list(tmp_path.iterdir()))}.bin").write_bytes(await request.body())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/gradio_api/upload", upload, methods=["POST"])],
                    middleware=[Middleware(UploadBudget, folder=tmp_path, limit=3 * 1024**2)])
    with TestClient(app) as client:
        answers = [client.post("/gradio_api/upload", content=os.urandom(1024**2)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 507] and len(list(tmp_path.iterdir())) == 3


def test_start_up_clears_what_killed_servers_left_and_spares_running_ones(tmp_path):
    from workbench.disk import instance_folder
    from workbench.jobs import JobRegistry

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / str(gone.pid) / "job").mkdir(parents=True)  # a killed server's job folder
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / str(running.pid) / "job").mkdir(parents=True)  # another server, still up
        JobRegistry(instance_folder(tmp_path), max_running=1, max_seconds=60).recover()
        assert not (tmp_path / str(gone.pid)).exists() and (tmp_path / str(running.pid) / "job").is_dir()
    finally:
        running.kill()


def test_a_sessions_downloads_are_bounded_in_count_and_bytes(monkeypatch):
    from workbench import downloads

    request = type("Request", (), {"session_hash": f"bounded{os.getpid()}"})()
    monkeypatch.setattr(downloads, "KEEP_BYTES", 3 * 1024**2)
    try:
        for _ in range(12):
            (downloads.session_folder(request) / "export.zip").write_bytes(os.urandom(1024**2))
        kept = list(downloads._session_root(request).iterdir())
        assert len(kept) <= downloads.KEEP_DOWNLOADS and sum(p.stat().st_size for p in kept[0].iterdir()) > 0
        assert downloads.used_bytes(downloads._session_root(request)) <= 4 * 1024**2  # the budget and the newest
    finally:
        downloads.remove_session(request)
