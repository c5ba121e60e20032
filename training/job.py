"""Fine-tuning as a background job: snapshot a dataset, train in a subprocess, compare old and new.

The workbench's Retrain tab drives this; it runs the same `python -m training.train` and
`python -m training.evaluate` commands a user would type, so a job can be reproduced by hand
from its folder (`config.json`, `train.log`, `run/`, `eval/`).
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from banet.hub import CONFIG_FILE, local_folder
from data_tools.atomic import atomic_path, write_text
from data_tools.dataset import Dataset, DatasetError, Sample
from data_tools.export import write_folder
from data_tools.split import seeded_cut

from .config import CPU_FINETUNE, TrainConfig
from .logs import read_csv

ROOT = Path(__file__).resolve().parents[1]  # the repository: where `python -m training.*` resolves
HELD_OUT_SPLITS = ("val", "test")
FEW_HELD_OUT = 10  # below this many held-out samples the comparison says it may be chance
STATES = ("preparing", "training", "evaluating", "done", "failed", "cancelled")
MAX_ITERATIONS = 100_000
PID_FILE = "pid"  # the running step's process id, for kill_orphans


class JobError(ValueError):
    """The job cannot start; the message says why."""


@dataclass
class JobStatus:
    state: str
    iteration: int = 0
    iterations: int = 0
    rows: list[dict] = field(default_factory=list)  # metrics.csv rows so far
    message: str = ""
    table: str = ""  # markdown table: old vs new weights on the held-out samples
    weights: str | None = None  # the new weights folder, once trained

    @property
    def running(self) -> bool:
        return self.state in ("preparing", "training", "evaluating")


def split_held_out(dataset: Dataset, fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, held out): the val/test splits when the dataset has them, else a seeded random fraction."""
    samples = sorted(dataset, key=lambda s: s.id)
    held = [s for s in samples if s.split in HELD_OUT_SPLITS]
    if not held:
        return seeded_cut(samples, fraction, seed, at_least=1)
    return [s for s in samples if s.split not in HELD_OUT_SPLITS], held


def job_config(train: Path, held_out: Path, init_weights: Path, iterations: int, n_train: int,
               input_size: int, max_lr: float = 0.001, base: TrainConfig = CPU_FINETUNE) -> TrainConfig:
    """Stage-2 recipe (refine loss on) from `init_weights`, sized for a small dataset and short run.

    BatchNorm statistics stay frozen and max_lr is a hundredth of the from-scratch recipe's: our
    choices, so that a few hundred steps on a few photos adjust trained weights rather than
    overwrite them (on 3 PFCN photos, 20 steps at 0.01 lost 5 points of held-out IoU; at 0.001
    they gained 0.4).
    """
    every = max(10, iterations // 10)
    return replace(base, train_data=(str(train),), val_data=(str(held_out),), init_weights=str(init_weights),
                   iterations=iterations, max_lr=max_lr, freeze_bn=True, warmup_start_lr=max_lr / 100,
                   warmup_iterations=min(base.warmup_iterations, iterations // 10),
                   batch_size=min(base.batch_size, n_train), input_size=input_size, log_every=5,
                   eval_every=every, checkpoint_every=every)


class FineTuneJob:
    """One fine-tuning run in `folder`: start() returns at once; status() and cancel() from any thread."""

    def __init__(self, folder: Path, dataset: Dataset, weights: str, iterations: int,
                 held_out_fraction: float = 0.2, seed: int = 0, name: str = "dataset",
                 max_seconds: float = math.inf) -> None:
        """`name`: the dataset's, for the weights' label (`banet-finetuned-<name>-<date and time>`);
        `max_seconds`: the job is stopped, and fails saying so, once it has run this long."""
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise JobError(f"iterations must be a whole number from 1 to {MAX_ITERATIONS}")
        self.folder, self.iterations, self.max_seconds = Path(folder), int(iterations), max_seconds
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:40] or "dataset"
        self.label = f"banet-finetuned-{slug}-{time.strftime('%Y%m%d-%H%M')}"
        self.init = local_folder(weights)
        self.train_samples, self.held_out = split_held_out(dataset, held_out_fraction, seed)
        if len(self.train_samples) < 2 or not self.held_out:
            raise JobError(f"{len(dataset)} samples are too few: fine-tuning needs at least 2 to train on "
                           "and 1 held out for the comparison")
        self.dataset = dataset
        self._state, self._message, self._table = "preparing", "", ""
        self._process: subprocess.Popen | None = None
        self._started = math.nan  # time.monotonic() at start()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"finetune-{self.folder.name}")

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            if self._process and self._process.poll() is None:
                _kill_group(self._process.pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> JobStatus:
        self._thread.join(timeout)
        return self.status()

    def status(self) -> JobStatus:
        metrics = self.folder / "run" / "metrics.csv"
        rows = read_csv(metrics) if metrics.is_file() else []
        iteration = int(rows[-1]["iteration"]) if rows else 0
        model = self.folder / "run" / "model"
        return JobStatus(self._state, iteration, self.iterations, rows, self._message, self._table,
                         str(model) if self._state == "done" else None)

    def pack_weights(self, folder: Path) -> Path:
        """The trained weights folder (model.safetensors, config.json, model card) as `folder`/<label>.zip,
        ready for `load_model` once unzipped; written atomically."""
        model = self.folder / "run" / "model"
        if self.status().state != "done":
            raise JobError("the fine-tuning has not finished")
        out = Path(folder) / f"{self.label}.zip"
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for file in sorted(p for p in model.iterdir() if p.is_file()):
                archive.write(file, f"{self.label}/{file.name}")
        return out

    def _run(self) -> None:
        try:
            self._prepare()
            if self._step("training", [sys.executable, "-m", "training.train", "--config",
                                       str(self.folder / "config.json"), "--out", str(self.folder / "run")]):
                return
            if self._step("evaluating", [sys.executable, "-m", "training.evaluate", "--weights", str(self.init),
                                         str(self.folder / "run" / "model"), "--data",
                                         str(self.folder / "held_out"), "--out", str(self.folder / "eval")]):
                return
            self._table = self._comparison()
            self._finish("done", "fine-tuning finished")
        except (DatasetError, OSError, ValueError) as e:
            self._finish("failed", str(e))

    def _prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_folder(self.dataset, self.train_samples, self.folder / "train")
        write_folder(self.dataset, self.held_out, self.folder / "held_out")
        # the canvas is the size the model works at, so the fine-tuned model keeps that size
        input_size = json.loads((self.init / CONFIG_FILE).read_text()).get("input_size", 256)
        config = job_config(self.folder / "train", self.folder / "held_out", self.init, self.iterations,
                            len(self.train_samples), input_size)
        write_text(self.folder / "config.json", config.to_json())

    def _step(self, state: str, command: list[str]) -> bool:
        """Run one command to its end; True when the job stopped there (cancelled or failed)."""
        log_path = self.folder / ("train.log" if state == "training" else "evaluate.log")
        with self._lock:
            if self._cancelled.is_set():
                self._finish("cancelled", "cancelled")
                return True
            self._state = state
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            with open(log_path, "wb") as log:  # its own process group, killed with the server (see _die_with_parent)
                self._process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True, preexec_fn=_die_with_parent)
            write_text(self.folder / PID_FILE, str(self._process.pid))
        try:
            code = self._process.wait(timeout=max(0.0, self.max_seconds - (time.monotonic() - self._started)))
        except subprocess.TimeoutExpired:
            _kill_group(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._finish("failed", f"stopped: the job ran past its time limit of {self.max_seconds / 60:.0f} minutes")
            return True
        if self._cancelled.is_set():
            self._finish("cancelled", "cancelled")
            return True
        if code != 0:
            tail = log_path.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-3:]
            self._finish("failed", f"{state} failed (exit {code}): " + " / ".join(tail))
            return True
        return False

    def _comparison(self) -> str:
        old, new = json.loads((self.folder / "eval" / "summary.json").read_text())
        rows = [("mean IoU", "iou"), ("boundary F", "boundary_f"), ("Boundary IoU", "boundary_iou"),
                ("gradient alignment", "gradient_alignment")]
        count = len(self.held_out)
        lines = [f"| on {count} held-out sample{'s' * (count != 1)} | current weights | fine-tuned |", "|---|---|---|"]
        lines += [f"| {label} | {100 * old[key]:.2f} | {100 * new[key]:.2f} |" for label, key in rows]
        if count < FEW_HELD_OUT:
            lines.append(f"\nOnly {count} held-out sample{'s' * (count != 1)}: differences of a few points can be "
                         "chance; hold out more (or add a val split) before trusting them.")
        return "\n".join(lines)

    def _finish(self, state: str, message: str) -> None:
        self._state, self._message = state, message


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGKILL when the thread that started it (the job's,
    which waits on it to the end) dies, as it does with the server. Elsewhere kill_orphans covers it."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the child leads its own group: its workers go with it
    except (ProcessLookupError, PermissionError):
        pass


def kill_orphans(jobs: Path) -> int:
    """Kill training processes a previous server left running (their folders under `jobs` name them);
    returns how many groups were signalled. Call at start-up, before the old job folders are removed."""
    killed = 0
    for pid_file in jobs.glob(f"*/{PID_FILE}"):
        try:
            pid = int(pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # ended, or not a Linux /proc: nothing to check it against
        if b"training." in command:  # the same pid may belong to an unrelated process by now
            _kill_group(pid, signal.SIGKILL)
            killed += 1
    return killed
