"""Bad input, generated: every importer, the archive opener, the predictor and the weights loader
answer each broken file with their own clear error (naming the file), never a stray exception.

Runs on built-in images (skimage's astronaut), so it needs no data beside the project.
"""
from __future__ import annotations

import base64
import copy
import io
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from banet import BANet, ImageLoadError, Predictor, WeightsError, load_model
from banet.image_io import load_rgb
from data_tools.archive import ArchiveError, open_archive
from data_tools.dataset import Dataset, DatasetError
from data_tools.importers import (
    ImportReport,
    import_into,
    mask_from_annotation_file,
    read_coco,
    read_folders,
    read_labelme,
    read_supervisely,
)

H, W = 48, 40
# What a fuzzed JSON value is replaced with; NaN and Infinity are what Python's json accepts.
MUTANTS = [None, "x", "", -1, 0, 10**12, 1.5, math.nan, math.inf, True, [], {}, [[1, "a"]], {"a": 1}]


@pytest.fixture(scope="module")
def tiny_model() -> BANet:
    torch.manual_seed(0)
    return BANet(input_size=64).eval()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.resize(skdata.astronaut(), (W, H), interpolation=cv2.INTER_AREA)


def jpeg(rgb: np.ndarray, **params) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", **params)
    return buffer.getvalue()


def person() -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (W // 2, H // 2 + 6), (12, 18), 0, 0, 360, 255, -1)
    return mask


def polygon() -> list[float]:
    contour = cv2.findContours(person(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0][0][:, 0, :]
    return [float(v) for v in contour[:: max(1, len(contour) // 5)].ravel()]  # a few points


def bitmap() -> str:
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = person()
    return base64.b64encode(zlib.compress(cv2.imencode(".png", rgba)[1].tobytes())).decode()


def paths(node: object, prefix: tuple = ()) -> Iterator[tuple]:
    """Every position in a JSON tree, as a key path."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


def mutants(document: dict) -> Iterator[tuple[str, object]]:
    """(description, mutated document): each position replaced by each MUTANT, or deleted."""
    for path in list(paths(document))[1:]:
        for value in MUTANTS + ["<delete>"]:
            doc = copy.deepcopy(document)
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if value == "<delete>":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            yield f"{'/'.join(map(str, path))} = {value!r}", doc


def broken_json_texts(document: dict) -> list[tuple[str, str | bytes]]:
    text = json.dumps(document)
    return [("truncated", text[: len(text) // 2]), ("empty", ""), ("a list", "[1, 2]"), ("a number", "3"),
            ("binary", bytes(range(256))), ("utf-16", text.encode("utf-16"))]


def check_report(report: ImportReport, dataset: Dataset) -> None:
    """A report that accounts for the file: imported (with a usable mask) or a named problem."""
    assert report.imported or report.problems
    for problem in report.problems:
        assert problem.file and problem.message
    for sample_id in report.imported:
        mask = dataset.read_mask(dataset[sample_id])
        assert mask.shape == (H, W) and mask.any()


def run_fuzz(tmp_path: Path, cases: Iterator[tuple[str, object]], write: Callable[[Path, object], None],
             read: Callable[[Path], Iterator]) -> int:
    """Import every case into a fresh dataset; returns how many ran; fails listing any escape."""
    escaped, count = [], 0
    for count, (label, content) in enumerate(cases, 1):
        folder = tmp_path / f"case{count}"
        write(folder, content)
        dataset = Dataset.create(folder / "out")
        try:
            check_report(import_into(dataset, read(folder)), dataset)
        except Exception as e:  # noqa: BLE001 -- the point: nothing may escape
            escaped.append(f"{label}: {e.__class__.__name__}: {e}")
    assert not escaped, f"{len(escaped)} of {count} bad files escaped:\n" + "\n".join(escaped[:20])
    return count


def json_file(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))


def test_fuzzed_coco_files_are_imported_or_named(tmp_path, photo):
    document = {"images": [{"id": 1, "file_name": "a.jpg", "height": H, "width": W}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [polygon()]},
                                {"id": 2, "image_id": 1, "category_id": 1,
                                 "segmentation": {"size": [H, W], "counts": [0, 100, H * W - 100]}}],
                "categories": [{"id": 1, "name": "person"}]}

    def write(folder: Path, content: object) -> None:
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "a.jpg").write_bytes(jpeg(photo))
        json_file(folder / "coco.json", content)

    cases = [*mutants(document), *broken_json_texts(document)]
    assert run_fuzz(tmp_path, iter(cases), write, lambda f: read_coco(f / "coco.json", f / "images")) > 500


def test_fuzzed_supervisely_files_are_imported_or_named(tmp_path, photo):
    document = {"size": {"height": H, "width": W},
                "objects": [{"classTitle": "person", "geometryType": "polygon",
                             "points": {"exterior": np.reshape(polygon(), (-1, 2)).tolist(), "interior": []}},
                            {"classTitle": "person", "geometryType": "bitmap",
                             "bitmap": {"data": bitmap(), "origin": [0, 0]}}]}

    def write(folder: Path, content: object) -> None:
        (folder / "ds" / "img").mkdir(parents=True)
        (folder / "ds" / "img" / "a.jpg").write_bytes(jpeg(photo))
        json_file(folder / "ds" / "ann" / "a.jpg.json", content)

    cases = [*mutants(document), *broken_json_texts(document)]
    assert run_fuzz(tmp_path, iter(cases), write, read_supervisely) > 300


def test_fuzzed_labelme_files_are_imported_or_named(tmp_path, photo):
    document = {"imagePath": "a.jpg", "imageHeight": H, "imageWidth": W,
                "shapes": [{"label": "person", "shape_type": "polygon",
                            "points": np.reshape(polygon(), (-1, 2)).tolist()},
                           {"label": "person", "shape_type": "rectangle", "points": [[5, 5], [12, 20]]}]}
    embedded = {**document, "imagePath": "missing.jpg", "imageData": base64.b64encode(jpeg(photo)).decode()}

    def write(folder: Path, content: object) -> None:
        folder.mkdir(parents=True)
        (folder / "a.jpg").write_bytes(jpeg(photo))
        json_file(folder / "a.json", content)

    cases = [*mutants(document), *mutants(embedded), *broken_json_texts(document),
             ("path outside", {**document, "imagePath": "../../etc/passwd"}),
             ("bad base64", {**embedded, "imageData": "%%%"}),
             ("not an image", {**embedded, "imageData": base64.b64encode(b"hello").decode()})]
    assert run_fuzz(tmp_path, iter(cases), write, read_labelme) > 300


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims a huge picture, with almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_image_bytes(photo: np.ndarray) -> dict[str, bytes]:
    good = jpeg(photo)
    return {"truncated.jpg": good[: len(good) // 2], "random.jpg": np.random.default_rng(0).bytes(4000),
            "random.png": b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(4000), "empty.png": b"",
            "page.jpg": b"<html><body>not a photo</body></html>", "bomb.png": bomb_png(),
            "header-only.jpg": good[:20]}


def odd_but_valid_images(photo: np.ndarray) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Encoded images in unusual modes, with the (h, w) they must load at."""
    def encode(image: Image.Image, fmt: str, **params) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **params)
        return buffer.getvalue()

    rgb = Image.fromarray(photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the photo loads as W x H
    sixteen = cv2.imencode(".png", (photo.astype(np.uint16) * 257)[..., ::-1])[1].tobytes()
    return {"cmyk.jpg": (encode(rgb.convert("CMYK"), "JPEG"), (H, W)),
            "palette.png": (encode(rgb.convert("P"), "PNG"), (H, W)),
            "rgba.png": (encode(rgb.convert("RGBA"), "PNG"), (H, W)),
            "gray.png": (encode(rgb.convert("L"), "PNG"), (H, W)),
            "bilevel.png": (encode(rgb.convert("1"), "PNG"), (H, W)),
            "gray16.png": (encode(Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257), "PNG"), (H, W)),
            "rgb16.png": (sixteen, (H, W)),
            "rotated.jpg": (encode(rgb, "JPEG", exif=exif), (W, H)),
            "jpeg-named.png": (jpeg(photo), (H, W))}


def test_the_predictor_refuses_broken_images_and_reads_odd_ones(tmp_path, photo, tiny_model):
    predictor = Predictor(tiny_model, device="cpu")
    for name, content in bad_image_bytes(photo).items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ImageLoadError, match=name.replace(".", r"\.")):
            predictor(tmp_path / name)
    for name, (content, size) in odd_but_valid_images(photo).items():
        (tmp_path / name).write_bytes(content)
        assert predictor(tmp_path / name).mask.shape == size, name
    arrays = {"two channels": np.zeros((8, 8, 2)), "five channels": np.zeros((8, 8, 5)),
              "four dims": np.zeros((1, 8, 8, 3)), "empty": np.zeros((0, 8, 3)), "text": np.array([["a"]])}
    for name, array in arrays.items():
        with pytest.raises(ImageLoadError):
            load_rgb(array)
    assert load_rgb(np.full((8, 8, 3), np.nan)).dtype == np.uint8  # NaN floats read as black


def test_paired_folders_with_bad_images_and_masks_name_each_file(tmp_path, photo):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    bad = bad_image_bytes(photo)
    for name, content in bad.items():
        (images / name).write_bytes(content)
        cv2.imwrite(str(masks / f"{Path(name).stem}.png"), person())
    mask_cases = {"small": person()[:20], "empty": np.zeros((H, W), np.uint8),
                  "soft": cv2.GaussianBlur(person(), (9, 9), 3), "sixteen": person().astype(np.uint16) * 257,
                  "colour": np.dstack([person()] * 3), "good": person()}
    for name, mask in mask_cases.items():
        (images / f"{name}.jpg").write_bytes(jpeg(photo))
        cv2.imwrite(str(masks / f"{name}.png"), mask)
    (images / "notamask.jpg").write_bytes(jpeg(photo))
    (masks / "notamask.png").write_bytes(b"garbage")
    (images / "orphan.jpg").write_bytes(jpeg(photo))
    (masks / "widow.png").write_bytes(cv2.imencode(".png", person())[1].tobytes())
    (images / "notes.txt").write_text("hello")

    dataset = Dataset.create(tmp_path / "out")
    report = import_into(dataset, read_folders(images, masks))
    assert sorted(report.imported) == ["colour", "good", "sixteen", "soft"]
    assert report.soft == ["soft"] and "not binary" in report.summary()
    named = " ".join(str(p) for p in report.problems)
    for name in [*bad, "small.jpg", "empty.jpg", "notamask.png", "orphan.jpg", "widow.png", "notes.txt"]:
        assert name in named, name
    assert "mask is 40x20, image is 40x48" in named and "mask is empty" in named


def zip_bytes(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_bad_archives_are_refused_with_a_reason(tmp_path, photo):
    mask = cv2.imencode(".png", person())[1].tobytes()
    good = {"images/a.jpg": jpeg(photo), "masks/a.png": mask}
    corrupt = bytearray(zip_bytes({**good, "images/b.jpg": np.random.default_rng(0).bytes(5000)}))
    corrupt[-400:-300] = bytes(100)  # damage the last entry's compressed data and the directory
    record = {"id": "a", "image": "images/a.jpg", "mask": "masks/a.png"}
    cases = {"not a zip": b"PK not really", "empty": b"", "truncated": zip_bytes(good)[:200],
             "corrupt": bytes(corrupt), "dotdot": zip_bytes({"../evil.jpg": b"x", **good}),
             "absolute": zip_bytes({"/tmp/evil.jpg": b"x", **good}), "symlink": zip_bytes(good, symlink="masks/b.png"),
             "nothing usable": zip_bytes({"readme.txt": b"hello"}),
             "only bad images": zip_bytes({"images/a.jpg": b"nope", "masks/a.png": mask}),
             "manifest escaping": zip_bytes({**good, "manifest.jsonl": json.dumps({**record, "image": "../../x.jpg"})}),
             "manifest garbage": zip_bytes({**good, "manifest.jsonl": b"\xff\xfe{"}),
             "manifest duplicate": zip_bytes({**good, "manifest.jsonl": (json.dumps(record) + "\n") * 2})}
    for name, content in cases.items():
        archive = tmp_path / f"{name.replace(' ', '-')}.zip"
        archive.write_bytes(content)
        with pytest.raises((ArchiveError, DatasetError)) as error:
            open_archive(archive, tmp_path / "work" / archive.stem)
        assert str(error.value), name


def test_broken_weights_are_refused_with_a_reason(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "good")
    config = json.loads((tmp_path / "good" / "config.json").read_text())
    cases: dict[str, Callable[[Path], None]] = {
        "not safetensors": lambda d: (d / "model.safetensors").write_bytes(b"\x80\x04\x95 pickled" * 50),
        "empty weights": lambda d: (d / "model.safetensors").write_bytes(b""),
        "no weights": lambda d: (d / "model.safetensors").unlink(),
        "pickle beside": lambda d: ((d / "model.safetensors").unlink(), (d / "pytorch_model.bin").write_bytes(b"x")),
        "config not json": lambda d: (d / "config.json").write_text("{width: 64"),
        "config a list": lambda d: (d / "config.json").write_text("[]"),
        "config wrong type": lambda d: (d / "config.json").write_text(json.dumps({**config, "width": "wide"})),
        "config other shape": lambda d: (d / "config.json").write_text(json.dumps({**config, "width": 32})),
        "no config": lambda d: (d / "config.json").unlink(),
    }
    for name, damage in cases.items():
        folder = tmp_path / name.replace(" ", "-")
        tiny_model.save_pretrained(folder)
        damage(folder)
        with pytest.raises(WeightsError):
            load_model(folder)
    with pytest.raises(WeightsError, match="pickled"):
        load_model(tmp_path / "good" / "config.json")


def test_compare_annotation_files_that_are_broken_say_why(tmp_path, photo):
    cases = {"garbage.png": b"garbage", "bomb.png": bomb_png(), "empty.json": b"",
             "list.json": b"[1]", "neither.json": b'{"foo": 1}', "shapes.json": b'{"shapes": 3}',
             "nan.json": json.dumps({"shapes": [{"label": "p", "points": [[math.nan, 1], [2, 2], [3, 1]]}]}).encode(),
             "coco.json": json.dumps({"images": "x", "annotations": []}).encode(),
             "rle.json": json.dumps({"annotations": [{"segmentation": {"size": [10**6, 10**6], "counts": [10**12]}}]}).encode()}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name.split(".")[0]):
            mask_from_annotation_file(tmp_path / name, H, W)
