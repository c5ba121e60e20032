"""Crashes lose nothing: a server killed mid-review keeps every decision it acknowledged, and an
export killed half-way leaves no half-written file under the final name.
(A training run killed with SIGKILL resuming to the same weights is in test_training.py.)"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.load import free_port, start_app

from .helpers import zip_pairs

ROOT = Path(__file__).resolve().parents[1]


def test_a_server_killed_mid_review_keeps_every_acknowledged_decision(pfcn_paths, tmp_path):
    from gradio_client import Client, handle_file

    from data_tools import review
    from data_tools.dataset import Dataset

    archive = zip_pairs(pfcn_paths[:4], tmp_path / "coarse.zip")
    workspace, port = tmp_path / "workspace", free_port()
    env = {"BANET_WORKSPACE": str(workspace)}
    key = "crash-test-browser"  # what gr.BrowserState keeps for this browser across reloads

    server = start_app(port, env)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        header = client.predict(handle_file(str(archive)), "", key, "all", 50, api_name="/refine_open")[5]
        decided = [header.split("**")[1]]
        header = client.predict(50, api_name="/refine_accept")[5]
        decided.append(header.split("**")[1])
        header = client.predict(50, api_name="/refine_reject")[5]
        assert "2 of 4 reviewed" in header
    finally:
        server.send_signal(signal.SIGKILL)  # no shutdown hooks, no flushing: as a crash
        server.wait()

    server = start_app(port, env)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        header = client.predict(handle_file(str(archive)), "", key, "all", 50, api_name="/refine_open")[5]
        assert "2 of 4 reviewed" in header
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    dataset = Dataset.open(next(workspace.rglob("manifest.jsonl")).parent)
    assert [review.status(dataset[i]) for i in decided] == ["accepted", "rejected"]


def test_an_export_killed_half_way_leaves_no_file_under_the_final_name(pfcn_paths, tmp_path):
    source = pfcn_paths[0].parents[1]  # the whole PFCN test set: a zip big enough to interrupt
    out = tmp_path / "export.zip"
    export = subprocess.Popen([sys.executable, "-m", "data_tools.export", str(source), str(out), "--format", "zip"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".export.*.zip")) and time.monotonic() < deadline:
        time.sleep(0.01)  # the temporary file appears once writing starts
    export.send_signal(signal.SIGKILL)
    assert export.wait() == -signal.SIGKILL, "the export ended before it could be interrupted"
    assert not out.exists() and list(tmp_path.glob(".export.*.zip"))  # written so far: only the temporary name


def test_an_export_that_fails_half_way_leaves_nothing_behind(pfcn_paths, tmp_path, monkeypatch):
    from data_tools.dataset import Dataset, DatasetError
    from data_tools.export import export_download

    dataset = Dataset.open(pfcn_paths[0].parents[1])
    calls = []

    def failing_read_mask(sample):
        calls.append(sample.id)
        if len(calls) == 3:
            raise DatasetError(f"{sample.id}: disk went away")
        return Dataset.read_mask(dataset, sample)

    monkeypatch.setattr(dataset, "read_mask", failing_read_mask)
    with pytest.raises(DatasetError, match="disk went away"):
        export_download(dataset, tmp_path / "refined.zip", "folders")
    assert list(tmp_path.iterdir()) == []
