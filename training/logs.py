"""Run records: metrics CSV and loss / validation curve PNG, both rewritten atomically."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from matplotlib.figure import Figure  # drawn without pyplot: no process-wide backend is chosen

from data_tools.atomic import atomic_path, write_text

COLUMNS = ("iteration", "epoch", "lr", "loss", "segmentation", "boundary", "refine",
           "val_iou", "val_miou", "seconds")


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_curves(path: Path, rows: list[dict], title: str) -> None:
    """Training loss (left) and validation IoU / mIoU (right) against iteration."""
    losses = [r for r in rows if r.get("loss") not in (None, "")]
    evals = [r for r in rows if r.get("val_iou") not in (None, "")]
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for key in ("loss", "segmentation", "boundary", "refine"):
        left.plot([int(r["iteration"]) for r in losses], [float(r[key]) for r in losses], label=key)
    left.set(xlabel="iteration", ylabel="loss", yscale="log", title="training loss")
    left.legend()
    for key in ("val_iou", "val_miou"):
        right.plot([int(r["iteration"]) for r in evals], [100 * float(r[key]) for r in evals],
                   marker="o", label=key)
    right.set(xlabel="iteration", ylabel="%", title="validation")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
