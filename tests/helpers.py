"""Helpers for tests on real photos."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import torch

from banet.targets import boundary_band


def read_pair(image_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8, mask uint8 0/255) of one PFCN-layout sample."""
    rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(image_path.parents[1] / "masks" / f"{image_path.stem}.png"), cv2.IMREAD_GRAYSCALE)
    return rgb, mask


def make_batch(pairs, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, mask, band) tensors for the loss, resized to size=(h, w)."""
    images, masks, bands = [], [], []
    for rgb, mask in pairs:
        rgb = cv2.resize(rgb, size[::-1], interpolation=cv2.INTER_AREA)
        mask = (cv2.resize(mask, size[::-1], interpolation=cv2.INTER_NEAREST) > 127).astype(np.uint8)
        images.append(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
        masks.append(torch.from_numpy(mask).float()[None])
        bands.append(torch.from_numpy(boundary_band(mask * 255)).float()[None])
    return torch.stack(images), torch.stack(masks), torch.stack(bands)


def copy_pairs(image_paths: list[Path], dest: Path) -> Path:
    """Copy PFCN-layout photos and their masks into dest/images and dest/masks."""
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    for image in image_paths:
        shutil.copy(image, dest / "images")
        shutil.copy(image.parents[1] / "masks" / f"{image.stem}.png", dest / "masks")
    return dest


def zip_pairs(image_paths: list[Path], archive: Path) -> Path:
    """A zip of PFCN-layout photos and their masks as images/ + masks/: an upload for the Refine tab."""
    with zipfile.ZipFile(archive, "w") as zf:
        for image in image_paths:
            zf.write(image, f"images/{image.name}")
            zf.write(image.parents[1] / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
    return archive


def latest_dataset(workspace: Path):
    """The dataset under `workspace` written last, read from disk as a restarted server reads it."""
    from data_tools.dataset import Dataset

    roots = [m.parent for m in workspace.rglob("manifest.jsonl")]
    return Dataset.open(max(roots, key=lambda p: p.stat().st_mtime))
