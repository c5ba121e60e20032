"""The viewer answers through gradio_client on a real photo."""
import os

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from workbench.ui import HEAD, build_app  # noqa: E402


@pytest.fixture(scope="module")
def client(fitted_model, tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights") / "fitted"
    fitted_model.save_pretrained(weights)
    app = build_app(str(weights))
    app.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, head=HEAD)
    try:
        yield Client(app.local_url, verbose=False)
    finally:
        app.close()


def test_inspect_returns_every_panel_for_a_real_photo(client, pfcn_paths):
    from PIL import Image

    *panels, timing = client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    assert len(panels) == 5 and "ms model time" in timing
    for panel in panels:
        picture = np.asarray(Image.open(panel))
        assert picture.shape[:2] == (800, 600) and picture.std() > 0


def test_inspect_reports_a_missing_photo_as_an_error_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Upload a photo"):
        client.predict(None, 0.5, api_name="/inspect")


def test_compose_replaces_the_background_and_offers_a_cutout_with_alpha(client, pfcn_paths):
    from PIL import Image

    client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    composite, files = client.predict("colour", "#ff0000", 12, None, api_name="/compose")
    picture = np.asarray(Image.open(composite))
    rgba = np.asarray(Image.open([f for f in files if "cutout" in f][0]))
    assert picture.shape == (800, 600, 3) and rgba.shape == (800, 600, 4)
    photo = np.asarray(Image.open(pfcn_paths[0]).convert("RGB"))
    assert (rgba[..., :3] == photo).all()
    alpha = rgba[..., 3:].astype(float) / 255  # the soft mask, as the cutout's alpha
    expected = alpha * photo + (1 - alpha) * np.array([255, 0, 0])
    assert np.abs(picture - expected).max() <= 1.5
    assert alpha.min() < 0.2 and alpha.max() > 0.8  # both person and background are in the photo
    blurred, _ = client.predict("blur", "#000000", 20, None, api_name="/compose")
    assert not np.array_equal(np.asarray(Image.open(blurred)), picture)


def test_compose_without_a_photo_or_background_says_what_is_missing(client, pfcn_paths):
    from gradio_client.exceptions import AppError

    fresh = Client(client.src, verbose=False)  # a new session has nothing to compose yet
    with pytest.raises(AppError, match="Segment a photo first"):
        fresh.predict("blur", "#000000", 12, None, api_name="/compose")
    client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    with pytest.raises(AppError, match="choose a background image"):
        client.predict("image", "#000000", 12, None, api_name="/compose")


def test_compare_colours_disagreement_and_scores_a_mask_and_a_labelme_file(client, pfcn_paths, tmp_path):
    import json

    import cv2
    from PIL import Image

    photo = pfcn_paths[1]
    mask_path = photo.parents[1] / "masks" / f"{photo.stem}.png"
    overlay, table = client.predict(handle_file(str(photo)), handle_file(str(mask_path)), 0.5, api_name="/compare")
    assert np.asarray(Image.open(overlay)).shape == (800, 600, 3)
    values = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in table.splitlines()[2:]}
    assert set(values) == {"IoU", "boundary F (2 px)", "Boundary IoU", "gradient alignment, prediction",
                           "gradient alignment, annotation"}
    assert 0 < values["IoU"] <= 100

    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    shapes = [{"label": "person", "points": c[:, 0, :].tolist(), "shape_type": "polygon"} for c in contours if len(c) > 2]
    (tmp_path / "labelme.json").write_text(json.dumps({"shapes": shapes}))
    _, polygon_table = client.predict(handle_file(str(photo)), handle_file(str(tmp_path / "labelme.json")), 0.5,
                                      api_name="/compare")
    polygon_iou = float(polygon_table.splitlines()[2].split("|")[2])
    assert abs(polygon_iou - values["IoU"]) < 1.0


def test_compare_rejects_an_annotation_of_the_wrong_size(client, pfcn_paths, tmp_path):
    from gradio_client.exceptions import AppError
    from PIL import Image

    Image.fromarray(np.full((100, 80), 255, np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(AppError, match="mask is 80x100, photo is 600x800"):
        client.predict(handle_file(str(pfcn_paths[0])), handle_file(str(tmp_path / "small.png")), 0.5,
                       api_name="/compare")


def test_refine_opens_a_zip_ranks_it_and_saves_decisions(client, pfcn_paths, tmp_path, monkeypatch):
    import zipfile

    from data_tools import review
    from data_tools.dataset import Dataset
    from workbench import refine_tab

    archive = tmp_path / "coarse.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for image in pfcn_paths[:3]:
            zf.write(image, f"images/{image.name}")
            zf.write(image.parents[1] / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
    # inputs: archive, server folder, browser key (empty: a new browser), status filter, band width
    views, header = (lambda r: (r[:3], r[4]))(client.predict(handle_file(str(archive)), "", "", "all", 50,
                                                             api_name="/refine_open"))
    assert all(views)
    assert "(1 of 3 in this view)" in header and "0 of 3 reviewed" in header
    first = header.split("**")[1]
    *_, header = client.predict(50, api_name="/refine_accept")
    assert "1 of 3 reviewed" in header and "(2 of 3" in header
    *_, header = client.predict(50, api_name="/refine_reject")
    assert "2 of 3 reviewed" in header
    *_, header = client.predict("unreviewed", 50, api_name="/refine_filter")
    assert "(1 of 1 in this view)" in header and "status: unreviewed" in header
    roots = [m.parent for m in refine_tab.WORKSPACE.rglob("manifest.jsonl")]
    dataset = Dataset.open(max(roots, key=lambda p: p.stat().st_mtime))  # as a restarted server reads it
    assert review.status(dataset[first]) == "accepted"
    details = dataset[first].history[-1].details
    assert details["band_width"] == 50 and details["method"] == "band-blend" and len(details["original_sha256"]) == 64
