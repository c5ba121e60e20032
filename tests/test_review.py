"""Archive opening (safe extraction, format detection) and review decisions on real photos."""
from __future__ import annotations

import json
import shutil
import stat
import zipfile

import cv2
import numpy as np
import pytest

from data_tools import refine, review
from data_tools.archive import ArchiveError, open_archive, safe_extract
from data_tools.dataset import Dataset, sha256_bytes

from .helpers import copy_pairs


def zip_folder(folder, archive, prefix=""):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


@pytest.fixture()
def paired(pfcn_paths, tmp_path):
    return copy_pairs(pfcn_paths[:3], tmp_path / "src")


def test_archives_in_each_layout_open_as_datasets(paired, tmp_path):
    dataset, kind, report = open_archive(zip_folder(paired, tmp_path / "a.zip", "wrapped/"), tmp_path / "w1")
    assert kind == "folders" and len(report.imported) == 3 and len(dataset) == 3
    again, kind, report = open_archive(zip_folder(dataset.root, tmp_path / "b.zip"), tmp_path / "w2")
    assert kind == "dataset" and report is None and sorted(again.samples) == sorted(dataset.samples)
    review.decide(again, sorted(again.samples)[0], "reject", None, {})
    reopened, kind, _ = open_archive(tmp_path / "b.zip", tmp_path / "w2")
    assert kind == "imported earlier" and review.progress(reopened) == (1, 3)
    labelme = tmp_path / "labelme"
    labelme.mkdir()
    for image in (paired / "images").iterdir():
        shutil.copy(image, labelme)
        mask = cv2.imread(str(paired / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
        contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        shapes = [{"label": "person", "points": c[:, 0, :].tolist()} for c in contours if len(c) > 2]
        (labelme / f"{image.stem}.json").write_text(json.dumps({"shapes": shapes, "imagePath": image.name}))
    dataset, kind, _ = open_archive(zip_folder(labelme, tmp_path / "c.zip"), tmp_path / "w3")
    assert kind == "labelme" and len(dataset) == 3


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt", "C:/evil.txt"])
def test_zip_slip_paths_are_refused(tmp_path, name):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(name, "escape")
    with pytest.raises(ArchiveError, match="unsafe path"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_symlinks_and_non_zips_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        safe_extract(tmp_path / "link.zip", tmp_path / "out")
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="not a readable zip"):
        safe_extract(tmp_path / "fake.zip", tmp_path / "out")


def test_decisions_are_saved_as_made_and_read_back(paired, tmp_path):
    dataset, _, _ = open_archive(zip_folder(paired, tmp_path / "a.zip"), tmp_path / "w")
    ids = sorted(dataset.samples)
    original = dataset.read_mask(dataset[ids[0]])
    proposal = np.where(original > 127, 200, 0).astype(np.uint8)
    review.decide(dataset, ids[0], "accept", proposal, {"method": refine.METHOD})
    review.decide(dataset, ids[1], "reject", None, {"method": refine.METHOD})
    reopened = Dataset.open(dataset.root)  # what a restarted server sees
    assert [review.status(reopened[i]) for i in ids] == ["accepted", "rejected", "unreviewed"]
    assert (reopened.read_mask(reopened[ids[0]]) == proposal).all()
    assert reopened[ids[0]].kind == "refined"
    rejected = reopened[ids[1]]
    assert rejected.history[-1].sha256 == sha256_bytes(reopened.mask_path(rejected).read_bytes())
    assert review.progress(reopened) == (2, 3)
    same, kind, _ = open_archive(tmp_path / "a.zip", tmp_path / "w")  # the same upload again
    assert kind == "imported earlier" and review.progress(same) == (2, 3)
    with pytest.raises(ValueError, match="needs a mask"):
        review.decide(reopened, ids[2], "edit", None, {})
