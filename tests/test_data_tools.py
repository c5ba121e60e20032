"""The dataset format, the importers and the data_tools commands, on real PFCN photos."""
from __future__ import annotations

import base64
import importlib
import json
import shutil
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from banet.image_io import load_rgb
from banet.metrics import foreground_iou
from data_tools import rle
from data_tools.archive import open_archive
from data_tools.dataset import MANIFEST, Dataset, DatasetError, sha256_bytes
from data_tools.importers import import_into, read_coco, read_folders, read_labelme, read_supervisely

from .helpers import copy_pairs


@pytest.fixture()
def photos(pfcn_paths, tmp_path) -> Path:
    """Four real photos and masks copied into tmp/src/{images,masks}."""
    return copy_pairs(pfcn_paths[:4], tmp_path / "src")


def contours(mask: np.ndarray) -> list[np.ndarray]:
    found, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c[:, 0, :].astype(float) for c in found if len(c) >= 3]


def assert_same_masks(dataset: Dataset, photos: Path, min_iou: float) -> None:
    for sample in dataset:
        original = cv2.imread(str(photos / "masks" / f"{sample.id}.png"), cv2.IMREAD_GRAYSCALE)
        assert foreground_iou(dataset.read_mask(sample) > 127, original > 127) >= min_iou, sample.id


def test_rle_round_trip_on_real_masks(pfcn_pairs):
    for _, mask in pfcn_pairs[:4]:
        binary = mask > 127
        encoded = rle.encode(binary)
        assert isinstance(encoded["counts"], str) and encoded["size"] == list(binary.shape)
        assert (rle.decode(encoded) == binary).all()
        counts = rle.encode_counts(binary)
        assert sum(counts) == binary.size and sum(counts[1::2]) == binary.sum()
        assert (rle.decode({"size": encoded["size"], "counts": counts}) == binary).all()


def test_folder_import_skips_bad_files_and_keeps_the_rest(photos, tmp_path):
    (photos / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    shutil.copy(next((photos / "masks").iterdir()), photos / "masks" / "broken.png")
    (photos / "images" / "orphan.png").write_bytes((photos / "masks" / "broken.png").read_bytes())
    first = sorted((photos / "images").glob("0*.jpg"))[0]
    small = cv2.resize(cv2.imread(str(photos / "masks" / f"{first.stem}.png")), (60, 80))
    shutil.copy(first, photos / "images" / "tiny.jpg")
    cv2.imwrite(str(photos / "masks" / "tiny.png"), small)
    cv2.imwrite(str(photos / "masks" / "blank.png"), np.zeros((800, 600), np.uint8))
    shutil.copy(first, photos / "images" / "blank.jpg")

    dataset = Dataset.create(tmp_path / "ds")
    report = import_into(dataset, read_folders(photos / "images", photos / "masks"))
    problems = {p.file.split(" ")[0]: p.message for p in report.problems}
    assert sorted(report.imported) == sorted(p.stem for p in (photos / "images").glob("0*.jpg"))
    assert "readable image" in problems["broken.jpg"]
    assert "no mask named orphan.png" in problems["orphan.png"]
    assert "mask is 60x80, image is 600x800" in problems["tiny.jpg"]
    assert "empty" in problems["blank.jpg"]
    reopened = Dataset.open(tmp_path / "ds")
    assert len(reopened) == 4
    assert_same_masks(reopened, photos, 1.0)
    for sample in reopened:  # provenance: the checksum in the history is of the stored mask
        assert sample.history[-1].sha256 == sha256_bytes(reopened.mask_path(sample).read_bytes())
        assert sample.source.endswith(f"{sample.id}.png") and sample.kind == "mask"


def test_coco_polygons_and_rle(photos, tmp_path):
    images, annotations = [], []
    for number, image in enumerate(sorted((photos / "images").iterdir()), 1):
        mask = cv2.imread(str(photos / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
        images.append({"id": number, "file_name": image.name, "height": 800, "width": 600})
        segmentation = rle.encode(mask > 127) if number % 2 else \
            [c.flatten().tolist() for c in contours(mask)]
        annotations.append({"id": number, "image_id": number, "category_id": 1, "segmentation": segmentation})
    annotations.append({"id": 99, "image_id": 1, "category_id": 2,  # a non-person object is ignored
                        "segmentation": [[0, 0, 600, 0, 600, 800, 0, 800]]})
    images.append({"id": 50, "file_name": "missing.jpg", "height": 800, "width": 600})
    annotations.append({"id": 50, "image_id": 50, "category_id": 1, "segmentation": [[0, 0, 9, 0, 9, 9]]})
    images[1]["width"] = 640  # declared size disagrees with the photo
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}
    (tmp_path / "coco.json").write_text(json.dumps(doc))

    dataset = Dataset.create(tmp_path / "ds")
    report = import_into(dataset, read_coco(tmp_path / "coco.json", photos / "images"))
    assert len(report.imported) == 3
    messages = " / ".join(str(p) for p in report.problems)
    assert "missing.jpg: image file not found" in messages
    assert f"{images[1]['file_name']} (coco.json#2): annotation says 640x800, image is 600x800" in messages
    assert_same_masks(dataset, photos, 0.99)
    assert {s.kind for s in dataset} == {"rle", "polygon"}


def test_supervisely_polygon_with_hole_and_bitmap(photos, tmp_path):
    project = tmp_path / "sly" / "portraits"
    (project / "img").mkdir(parents=True)
    (project / "ann").mkdir()
    files = sorted((photos / "images").iterdir())
    for i, image in enumerate(files[:2]):
        shutil.copy(image, project / "img")
        mask = cv2.imread(str(photos / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
        if i == 0:  # polygon with a 20x20 hole cut in the middle of the person
            ys, xs = np.nonzero(mask > 127)
            cy, cx = int(np.median(ys)), int(np.median(xs))
            hole = [[cx - 10, cy - 10], [cx + 10, cy - 10], [cx + 10, cy + 10], [cx - 10, cy + 10]]
            obj = {"classTitle": "person", "geometryType": "polygon",
                   "points": {"exterior": max(contours(mask), key=len).tolist(), "interior": [hole]}}
        else:  # bitmap cropped to the person's bounding box, placed at its origin
            ys, xs = np.nonzero(mask > 127)
            crop = (mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 127).astype(np.uint8) * 255
            png = cv2.imencode(".png", crop)[1].tobytes()
            obj = {"classTitle": "person", "geometryType": "bitmap",
                   "bitmap": {"data": base64.b64encode(zlib.compress(png)).decode(),
                              "origin": [int(xs.min()), int(ys.min())]}}
        ann = {"size": {"height": 800, "width": 600}, "objects": [obj]}
        (project / "ann" / f"{image.name}.json").write_text(json.dumps(ann))
    (project / "ann" / "ghost.jpg.json").write_text("{ not json")

    dataset = Dataset.create(tmp_path / "ds")
    report = import_into(dataset, read_supervisely(tmp_path / "sly"))
    assert sorted(report.imported) == sorted(f.stem for f in files[:2])
    assert [p.file for p in report.problems] == ["ghost.jpg.json"]
    polygon_mask = dataset.read_mask(dataset[files[0].stem])
    assert polygon_mask[cy, cx] == 0 and polygon_mask[cy, cx + 15] == 255  # the hole is cut
    assert_same_masks(dataset, photos, 0.99)
    assert dataset[files[1].stem].kind == "bitmap"


def test_labelme_with_file_and_embedded_image(photos, tmp_path):
    folder = tmp_path / "labelme"
    folder.mkdir()
    files = sorted((photos / "images").iterdir())
    for i, image in enumerate(files[:2]):
        mask = cv2.imread(str(photos / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
        shapes = [{"label": "person", "points": c.tolist(), "shape_type": "polygon"} for c in contours(mask)]
        shapes.append({"label": "bag", "points": [[0, 0], [599, 799]], "shape_type": "rectangle"})
        doc = {"shapes": shapes, "imagePath": image.name, "imageHeight": 800, "imageWidth": 600,
               "imageData": None}
        if i == 0:
            shutil.copy(image, folder)
        else:
            doc["imageData"] = base64.b64encode(image.read_bytes()).decode()
        (folder / f"{image.stem}.json").write_text(json.dumps(doc))
    (folder / "lost.json").write_text(json.dumps({"shapes": [], "imagePath": "lost.jpg"}))

    dataset = Dataset.create(tmp_path / "ds")
    report = import_into(dataset, read_labelme(folder, {"person"}))
    assert sorted(report.imported) == sorted(f.stem for f in files[:2])
    assert [str(p) for p in report.problems] == ["lost.jpg: image file not found"]
    assert_same_masks(dataset, photos, 0.99)


def test_paired_folder_is_read_only(photos):
    dataset = Dataset.open(photos)
    assert len(dataset) == 4 and dataset.read_only
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save()
    assert not (photos / MANIFEST).exists()


def test_failed_write_keeps_the_old_mask_and_manifest(photos, tmp_path, monkeypatch):
    dataset = Dataset.create(tmp_path / "ds")
    import_into(dataset, read_folders(photos / "images", photos / "masks"))
    sample = next(iter(dataset))
    before_mask = dataset.mask_path(sample).read_bytes()
    before_manifest = (dataset.root / MANIFEST).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("data_tools.atomic.os.replace", crash)
    with pytest.raises(OSError):
        dataset.set_mask(sample.id, np.zeros((800, 600), np.uint8), "edit")
    with pytest.raises(OSError):
        dataset.save()
    assert dataset.mask_path(sample).read_bytes() == before_mask
    assert (dataset.root / MANIFEST).read_bytes() == before_manifest
    assert sorted(p.name for p in dataset.root.iterdir()) == ["images", MANIFEST, "masks"]
    assert not [p for p in (dataset.root / "masks").iterdir() if p.name.startswith(".")]


def run_cli(name: str, *args: str) -> int:
    return importlib.import_module(f"data_tools.{name}").main([str(a) for a in args])


@pytest.mark.parametrize("name", ["import", "split", "resize", "stats", "export"])
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(name, "--help")
    assert exit_info.value.code == 0
    assert f"python -m data_tools.{name}" in capsys.readouterr().out


def test_commands_import_split_resize_stats_export(photos, tmp_path, capsys):
    ds, small = tmp_path / "ds", tmp_path / "small"
    assert run_cli("import", ds, "--folders", photos / "images", photos / "masks") == 0
    assert "imported 4 samples, skipped 0" in capsys.readouterr().out
    assert run_cli("split", ds, "--val", "0.25", "--test", "0.25") == 0
    assert sorted(s.split for s in Dataset.open(ds)) == ["test", "train", "train", "val"]
    assert run_cli("resize", ds, small, "--long-side", "200") == 0
    resized = Dataset.open(small)
    assert [s.split for s in resized] == [s.split for s in Dataset.open(ds)]
    for sample in resized:
        assert resized.read_image(sample).shape == (200, 150, 3)
        assert [r.action for r in sample.history] == ["import", "resize"]
    capsys.readouterr()
    assert run_cli("stats", small, "--json") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["samples"] == 4 and stats["sizes"] == {"150x200": 4}
    assert 0.2 < stats["person_fraction"]["mean"] < 0.9

    assert run_cli("export", small, tmp_path / "folder", "--format", "folder", "--split", "train") == 0
    assert len(list((tmp_path / "folder" / "masks").iterdir())) == 2
    assert run_cli("export", small, tmp_path / "coco.json", "--format", "coco") == 0
    again = Dataset.create(tmp_path / "again")
    import_into(again, read_coco(tmp_path / "coco.json", small / "images"))
    for sample in again:
        assert (again.read_mask(sample) > 127).tolist() == (resized.read_mask(resized[sample.id]) > 127).tolist()
    assert run_cli("export", small, tmp_path / "all.zip", "--format", "zip") == 0
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        names = archive.namelist()
        assert MANIFEST in names and len(names) == 9
        assert len(archive.read(MANIFEST).decode().splitlines()) == 4


def test_commands_refuse_bad_arguments(photos, tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli("split", photos, "--val", "0.5")  # plain folder: read-only
    assert "read-only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("stats", tmp_path / "nowhere")
    assert "not a dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("import", tmp_path / "ds", "--coco", tmp_path / "none.json", photos / "images")
    assert "file not found" in capsys.readouterr().err


def test_a_zip_mixing_layouts_imports_each_of_them(photos, tmp_path):
    """images/ + masks/ beside LabelMe files at the top: both layouts are imported, and named."""
    files = sorted((photos / "images").iterdir())
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for image in files[:2]:
            zf.write(image, f"images/{image.name}")
            zf.write(photos / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
        image = files[2]
        mask = cv2.imread(str(photos / "masks" / f"{image.stem}.png"), cv2.IMREAD_GRAYSCALE)
        shapes = [{"label": "person", "points": c.tolist(), "shape_type": "polygon"} for c in contours(mask)]
        zf.write(image, image.name)
        zf.writestr(f"{image.stem}.json", json.dumps({"shapes": shapes, "imagePath": image.name}))
    dataset, kind, report = open_archive(archive, tmp_path / "work")
    assert kind == "folders + labelme"
    assert sorted(report.imported) == sorted(f.stem for f in files[:3]) and not report.problems
    assert_same_masks(dataset, photos, 0.95)  # outer polygons leave out the holes of one mask
    assert {dataset[f.stem].kind for f in files[:3]} == {"mask", "polygon"}


def test_compare_and_import_read_the_same_coco_categories(photos, tmp_path):
    from data_tools.importers import mask_from_annotation_file

    image = sorted((photos / "images").iterdir())[0]
    person = [[100, 100], [300, 100], [300, 500], [100, 500]]
    car = [[400, 600], [550, 600], [550, 750], [400, 750]]
    document = {"images": [{"id": 1, "file_name": image.name, "height": 800, "width": 600}],
                "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [sum(person, [])]},
                                {"id": 2, "image_id": 1, "category_id": 3, "segmentation": [sum(car, [])]}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(document))
    compared = mask_from_annotation_file(path, 800, 600)
    dataset = Dataset.create(tmp_path / "ds")
    import_into(dataset, read_coco(path, photos / "images"))
    imported = dataset.read_mask(dataset[image.stem])
    assert compared[300, 200] == 255 and compared[700, 500] == 0  # the car is not a person
    assert np.array_equal(compared, imported)


def test_resize_copies_a_folder_of_photos_without_masks(photos, tmp_path, capsys):
    """Backgrounds have no masks: each photo is shrunk under its own name (held-out scenes are
    recognised by name); a folder with no photos, or a damaged dataset, is refused."""
    assert run_cli("resize", photos / "images", tmp_path / "small", "--long-side", "100") == 0
    assert "wrote 4 photos" in capsys.readouterr().out
    originals = sorted((photos / "images").iterdir())
    copies = sorted((tmp_path / "small").iterdir())
    assert [p.stem for p in copies] == [p.stem for p in originals]
    for original, copy in zip(originals, copies):
        small, big = load_rgb(copy), load_rgb(original)
        assert max(small.shape[:2]) == 100
        assert abs(small.shape[1] / small.shape[0] - big.shape[1] / big.shape[0]) < 0.02
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        run_cli("resize", tmp_path / "empty", tmp_path / "out")
    assert "neither a dataset nor a folder of photos" in capsys.readouterr().err
    broken = tmp_path / "broken"  # a dataset with a damaged manifest is refused, not copied as photos
    shutil.copytree(photos / "images", broken / "images")
    (broken / MANIFEST).write_text("{not json")
    with pytest.raises(SystemExit):
        run_cli("resize", broken, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
