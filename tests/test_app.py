"""The viewer answers through gradio_client on a real photo."""
import os

from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402

from workbench.settings import WORKSPACE, Settings  # noqa: E402
from workbench.ui import launch  # noqa: E402

from .helpers import latest_dataset, zip_pairs  # noqa: E402


@pytest.fixture(scope="module")
def client(fitted_model, tmp_path_factory):
    weights = tmp_path_factory.mktemp("weights") / "fitted"
    fitted_model.save_pretrained(weights)
    app = launch(Settings(weights=str(weights)), prevent_thread_lock=True, quiet=True)
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
        assert picture.shape[:2] == (640, 480) and picture.std() > 0  # drawn at display size (800x600 photo)


def test_a_new_threshold_redraws_the_mask_without_segmenting_again(client, pfcn_paths):
    from PIL import Image

    *panels, timing = client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    low, low_text = client.predict(0.05, api_name="/inspect_threshold")
    high, high_text = client.predict(0.95, api_name="/inspect_threshold")
    model_time = timing.split(";")[0]
    assert low_text.startswith(model_time) and high_text.startswith(model_time)  # the same model call

    def covered(text: str) -> int:
        return int(text.split("covers ")[1].split("%")[0])

    assert covered(low_text) > covered(timing) > covered(high_text)
    assert Image.open(low).size == Image.open(high).size == Image.open(panels[1]).size


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
    overlay, preview, table = client.predict(handle_file(str(photo)), handle_file(str(mask_path)), 0.5,
                                             api_name="/compare")
    assert np.asarray(Image.open(overlay)).shape == np.asarray(Image.open(preview)).shape == (800, 600, 3)
    values = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in table.splitlines()[2:]
              if line.startswith("| ")}
    assert "**Boundary IoU**:" in table  # each metric explained under the table
    assert set(values) == {"IoU", "boundary F (2 px)", "Boundary IoU", "gradient alignment, prediction",
                           "gradient alignment, annotation"}
    assert 0 < values["IoU"] <= 100

    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    shapes = [{"label": "person", "points": c[:, 0, :].tolist(), "shape_type": "polygon"} for c in contours if len(c) > 2]
    (tmp_path / "labelme.json").write_text(json.dumps({"shapes": shapes}))
    *_, polygon_table = client.predict(handle_file(str(photo)), handle_file(str(tmp_path / "labelme.json")), 0.5,
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


def test_refine_opens_a_zip_ranks_it_and_saves_decisions(client, pfcn_paths, tmp_path):
    from data_tools import review

    archive = zip_pairs(pfcn_paths[:3], tmp_path / "coarse.zip")
    # inputs: archive, server folder, browser key (empty: a new browser), status filter, band width
    views, header = (lambda r: (r[:4], r[5]))(client.predict(handle_file(str(archive)), "", "", "all", 50,
                                                             api_name="/refine_open"))
    assert all(views)  # annotation, model, proposal, matte with its band
    assert "band 50 px" in header and ("likely improvement" in header or "no change proposed" in header)
    assert "(1 of 3 in this view)" in header and "0 of 3 reviewed" in header
    first = header.split("**")[1]
    *_, header = client.predict(50, api_name="/refine_accept")
    assert "1 of 3 reviewed" in header and "(2 of 3" in header
    *_, header = client.predict(50, api_name="/refine_reject")
    assert "2 of 3 reviewed" in header
    *_, header = client.predict("unreviewed", 50, api_name="/refine_filter")
    assert "(1 of 1 in this view)" in header and "status: unreviewed" in header
    dataset = latest_dataset(WORKSPACE)
    assert review.status(dataset[first]) == "accepted"
    details = dataset[first].history[-1].details
    assert details["band_px"] == 50 and details["method"] == "guided-matting" and len(details["original_sha256"]) == 64
    assert isinstance(details["confidence"], float)


def _open_three(client, pfcn_paths, tmp_path) -> str:
    """Open a zip of three real photos with their masks in the Refine tab; returns the first id."""
    archive = zip_pairs(pfcn_paths[:3], tmp_path / "coarse.zip")
    result = client.predict(handle_file(str(archive)), "", "", "all", 50, api_name="/refine_open")
    return result[5].split("**")[1]


def test_save_edit_applies_add_and_remove_strokes_to_the_proposal(client, pfcn_paths, tmp_path):
    from PIL import Image

    from data_tools import review
    from workbench import refine_tab

    first = _open_three(client, pfcn_paths, tmp_path)
    layer = np.zeros((800, 600, 4), np.uint8)
    layer[20:120, 20:180] = (*refine_tab.ADD, 255)  # background corner painted as person
    layer[400:500, 250:350] = (*refine_tab.REMOVE, 255)  # middle of the body painted as background
    Image.fromarray(layer).save(tmp_path / "layer.png")
    Image.open(pfcn_paths[0]).save(tmp_path / "background.png")
    edit = {"background": handle_file(str(tmp_path / "background.png")),
            "layers": [handle_file(str(tmp_path / "layer.png"))], "composite": None}
    *_, header = client.predict(50, edit, api_name="/refine_edit")
    assert "1 of 3 reviewed" in header
    dataset = latest_dataset(WORKSPACE)
    assert review.status(dataset[first]) == "edited"
    saved = dataset.read_mask(dataset[first])
    assert (saved[20:120, 20:180] == 255).all() and (saved[400:500, 250:350] == 0).all()
    unpainted = np.ones_like(saved, bool)
    unpainted[20:120, 20:180] = unpainted[400:500, 250:350] = False
    assert 0.2 < (saved[unpainted] > 127).mean() < 0.9  # the proposal is kept where nothing was painted
    assert dataset[first].history[-1].details["method"] == "brush"

    with pytest.raises(Exception, match="Paint on the editor first"):
        client.predict(50, {"background": handle_file(str(tmp_path / "background.png")), "layers": [],
                            "composite": None}, api_name="/refine_edit")


def test_export_downloads_the_refined_dataset_in_each_format(client, pfcn_paths, tmp_path):
    import json
    import zipfile

    from data_tools import rle

    first = _open_three(client, pfcn_paths, tmp_path)
    client.predict(50, api_name="/refine_accept")
    with zipfile.ZipFile(client.predict("dataset", api_name="/export_dataset")) as zf:
        manifest = [json.loads(line) for line in zf.read("manifest.jsonl").decode().splitlines()]
        assert len(manifest) == 3 and len([n for n in zf.namelist() if n.startswith("masks/")]) == 3
    actions = {m["id"]: [h["action"] for h in m["history"]] for m in manifest}
    assert actions[first][-1] == "accept"
    with zipfile.ZipFile(client.predict("coco", api_name="/export_dataset")) as zf:
        coco = json.loads(zf.read("annotations.json"))
        names = set(zf.namelist())
    assert len(coco["images"]) == 3 and all(f"images/{i['file_name']}" in names for i in coco["images"])
    mask = rle.decode(coco["annotations"][0]["segmentation"])
    assert mask.shape == (800, 600) and 0.05 < mask.mean() < 0.95
    with zipfile.ZipFile(client.predict("folders", api_name="/export_dataset")) as zf:
        assert sorted(n.split("/")[0] for n in zf.namelist()) == ["images"] * 3 + ["masks"] * 3


def test_retrain_fine_tunes_in_the_background_compares_and_switches_weights(client, pfcn_paths, tmp_path):
    import time
    import zipfile

    from banet import load_model

    _open_three(client, pfcn_paths, tmp_path)
    status, _, table = client.predict(10, 0.3, api_name="/retrain_start")[:3]
    assert "iteration" in status
    deadline = time.monotonic() + 240
    while "**done**" not in status and time.monotonic() < deadline:
        assert "failed" not in status and "cancelled" not in status, status
        time.sleep(2)
        status, _, table = client.predict(api_name="/retrain_status")[:3]
    assert "**done**" in status and "iteration 10 of 10" in status
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in table.splitlines()[2:] if line.startswith("|")}
    assert set(rows) == {"mean IoU", "boundary F", "Boundary IoU", "gradient alignment"}
    assert "on 1 held-out sample |" in table and "Only 1 held-out sample: differences" in table
    assert "(100%)" in status and "elapsed" in status and "left" not in status
    assert "held-out IoU while training" in status and "(at the training size)" in status
    assert client.predict(api_name="/retrain_status")[-1]  # the held-out curve has its point
    note = client.predict(api_name="/retrain_use")
    assert "fine-tuned" in note and "banet-finetuned-" in note and "/tmp" not in note
    with zipfile.ZipFile(client.predict(api_name="/retrain_weights")) as zf:
        zf.extractall(tmp_path / "unzipped")
    [folder] = (tmp_path / "unzipped").iterdir()
    assert folder.name.startswith("banet-finetuned-") and folder.name in note
    assert load_model(folder).input_size == 160  # the downloaded weights load as they are
    *panels, timing = client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    assert "ms model time at long side 160" in timing


def test_retrain_can_be_cancelled_and_says_so(client, pfcn_paths, tmp_path):
    import time

    from gradio_client.exceptions import AppError

    fresh = Client(client.src, verbose=False)
    with pytest.raises(AppError, match="Open a dataset in the Refine tab first"):
        fresh.predict(10, 0.3, api_name="/retrain_start")
    _open_three(client, pfcn_paths, tmp_path)
    client.predict(4000, 0.3, api_name="/retrain_start")
    time.sleep(3)
    status = client.predict(api_name="/retrain_cancel")[0]
    assert "**cancelled**" in status


def test_broken_uploads_get_a_clear_message_not_a_traceback(client, pfcn_paths, tmp_path):
    from gradio_client.exceptions import AppError

    from .test_bad_inputs import bomb_png

    good = pfcn_paths[0].read_bytes()
    files = {"truncated.jpg": good[: len(good) // 3], "random.jpg": np.random.default_rng(0).bytes(3000),
             "bomb.png": bomb_png(), "page.png": b"<html>no</html>"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(AppError, match=rf"{name.replace('.', '[.]')}: (not a readable image|corrupt or truncated)") as error:
            client.predict(handle_file(str(tmp_path / name)), 0.5, api_name="/inspect")
        assert "Traceback" not in str(error.value)
    client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    with pytest.raises(AppError, match="random.jpg: not a readable image"):
        client.predict("image", "#000000", 12, handle_file(str(tmp_path / "random.jpg")), api_name="/compose")


def test_a_closed_session_leaves_no_downloads_or_jobs_behind(client, pfcn_paths, tmp_path):
    import time

    from gradio.utils import get_upload_folder

    from workbench.downloads import DOWNLOADS
    from workbench.settings import JOBS_DIR

    started = time.time()
    session = Client(client.src, verbose=False, download_files=tmp_path / "client")  # not in Gradio's folder
    session.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    composite, _ = session.predict("blur", "#000000", 12, None, api_name="/compose")
    _open_three(session, pfcn_paths, tmp_path)
    session.predict("coco", api_name="/export_dataset")
    jobs_dir = JOBS_DIR / str(os.getpid())  # this server's (disk.instance_folder)
    before = set(jobs_dir.glob("*"))
    session.predict(4000, 0.3, api_name="/retrain_start")
    [job] = set(jobs_dir.glob("*")) - before
    folder = DOWNLOADS / "".join(c for c in session.session_hash if c.isalnum())
    assert len(list(folder.rglob("*.png"))) == 2 and len(list(folder.rglob("*.zip"))) == 1 and job.is_dir()
    # Gradio serves the session's files where they are: no copy in its cache outlives the session
    copies = [p for p in Path(get_upload_folder()).rglob("cutout-alpha.png")
              if DOWNLOADS not in p.parents and p.stat().st_mtime >= started]
    assert copies == []
    session.close()  # as a closed browser tab: Gradio's unload event
    deadline = time.monotonic() + 60
    while (folder.exists() or job.exists()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not folder.exists() and not job.exists()


def test_the_server_hands_out_only_its_own_results(client, pfcn_paths, tmp_path):
    import httpx


    _open_three(client, pfcn_paths, tmp_path)
    client.predict(handle_file(str(pfcn_paths[0])), 0.5, api_name="/inspect")
    client.predict("blur", "#000000", 12, None, api_name="/compose")  # served to the client via Gradio's cache
    manifest = next(WORKSPACE.rglob("manifest.jsonl"))
    for path in ["/etc/passwd", __file__, str(pfcn_paths[0]), str(manifest)]:
        answer = httpx.get(f"{client.src.rstrip('/')}/gradio_api/file={path}")
        assert answer.status_code in (403, 404), (path, answer.status_code)


def test_a_dataset_with_an_unreadable_photo_opens_without_it(client, pfcn_paths, tmp_path):
    import json
    import zipfile

    from gradio_client.exceptions import AppError

    archive = tmp_path / "with-a-broken-photo.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        lines = []
        for number, image in enumerate(pfcn_paths[:3]):
            content = image.read_bytes()
            zf.writestr(f"images/{image.name}", content[:500] if number == 0 else content)  # the first is cut short
            zf.write(image.parents[1] / "masks" / f"{image.stem}.png", f"masks/{image.stem}.png")
            lines.append(json.dumps({"id": image.stem, "image": f"images/{image.name}", "mask": f"masks/{image.stem}.png"}))
        zf.writestr("manifest.jsonl", "\n".join(lines) + "\n")
    header = client.predict(handle_file(str(archive)), "", "", "all", 50, api_name="/refine_open")[5]
    assert "(1 of 2 in this view)" in header and pfcn_paths[0].stem not in header.split("·")[0]
    broken = tmp_path / "all-broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("images/a.jpg", b"nope")
        zf.writestr("masks/a.png", b"nope")
        zf.writestr("manifest.jsonl", json.dumps({"id": "a", "image": "images/a.jpg", "mask": "masks/a.png"}) + "\n")
    with pytest.raises(AppError, match="No sample of this dataset could be read: images/a.jpg"):
        client.predict(handle_file(str(broken)), "", "", "all", 50, api_name="/refine_open")
