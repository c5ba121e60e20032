"""The Refine tab: open a dataset, review model-guided refinements worst first, decide."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from banet import ImageLoadError
from data_tools import refine, review
from data_tools.archive import ArchiveError, open_archive
from data_tools.dataset import Dataset, DatasetError

from .models import Predictors
from .views import overlay

WORKSPACE = Path(os.environ.get("BANET_WORKSPACE", Path(tempfile.gettempdir()) / "banet-workbench" / "datasets"))
FILTERS = ("all", *review.STATUSES)
LOCAL = "SPACE_ID" not in os.environ  # a server folder may only be opened when running locally
KEEP_DAYS = float(os.environ.get("BANET_KEEP_DAYS", 7))  # uploaded datasets untouched this long are removed
ADD, REMOVE = (255, 0, 180), (0, 229, 255)  # brush colours: paint the person / paint background
PROPOSAL_TINT = 0.35  # how strongly the proposed mask tints the photo under the brush


def prune(root: Path = WORKSPACE, days: float = KEEP_DAYS) -> int:
    """Remove uploaded datasets (root/<browser>/<archive>) untouched for `days`; returns how many."""
    cutoff, removed = time.time() - days * 86400, 0
    for folder in root.glob("*/*"):
        touched = [folder, *folder.glob("dataset/manifest.jsonl")]
        if folder.is_dir() and max(p.stat().st_mtime for p in touched) < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    for browser in root.glob("*"):
        if browser.is_dir() and not any(browser.iterdir()):
            browser.rmdir()
    return removed


def _upload_dir(browser_key: str, archive: Path) -> Path:
    """Per-browser, per-archive folder: the same upload in the same browser reopens its decisions."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    key = "".join(c for c in browser_key if c.isalnum())[:32] or "anonymous"
    return WORKSPACE / key / digest


def build(predictors: Predictors, model: gr.State) -> gr.State:
    """Lay out the tab inside the current Blocks context; returns the session's review queue state."""
    browser_key = gr.BrowserState("", storage_key="banet-workbench-key")
    queue = gr.State(None)  # {"root", "order", "scores", "position"}: this session's review queue

    def current(state: dict, band_width: float):
        dataset = Dataset.open(state["root"])
        sample = dataset[state["order"][state["position"]]]
        image, annotation = dataset.read_image(sample), dataset.read_mask(sample)
        confidence = predictors(state["model"])(image).confidence
        proposal = refine.propose(annotation, confidence, band_width)
        return dataset, sample, image, annotation, confidence, proposal

    def show(state: dict | None, band_width: float):
        if not state or not state["order"]:
            return [None, None, None, None, "No dataset open, or no sample matches the filter.", state]
        dataset, sample, image, annotation, confidence, proposal = current(state, band_width)
        done, total = review.progress(dataset)
        header = (f"**{sample.id}** ({state['position'] + 1} of {len(state['order'])} in this view) · "
                  f"status: {review.status(sample)} · disagreement {state['scores'][sample.id]:.3f} · "
                  f"{done} of {total} reviewed")
        tint = (proposal[..., None] / 255.0) * PROPOSAL_TINT
        background = (image * (1 - tint) + np.array(ADD) * tint).astype(np.uint8)
        editor = {"background": background, "layers": [], "composite": None}
        state = {**state, "shown": (sample.id, band_width, proposal)}  # what a decision on it accepts
        return [overlay(image, annotation > 127), overlay(image, confidence >= 0.5),
                overlay(image, proposal > 127), editor, header, state]

    def open_dataset(archive: str | None, folder: str, key: str, status_filter: str, band_width: float,
                     model_name: str, progress=gr.Progress()):
        if not key:
            key = os.urandom(12).hex()
        try:
            if archive:
                dataset, kind, report = open_archive(Path(archive), _upload_dir(key, Path(archive)))
                note = f"opened {kind} archive" + (f": {report.summary()}" if report else "")
            elif folder and LOCAL:
                dataset, note = Dataset.open(folder), f"opened {folder}"
                if dataset.read_only:
                    raise DatasetError(f"{folder} has no manifest.jsonl; import it first "
                                       "(python -m data_tools.import) so decisions can be saved")
            else:
                raise gr.Error("Upload a zip archive" + (" or give a dataset folder on this server." if LOCAL else "."))
        except (ArchiveError, DatasetError) as e:
            raise gr.Error(str(e)) from e
        predictor, scores, unreadable = predictors(model_name), {}, []
        for sample in progress.tqdm(list(dataset), desc="ranking by disagreement"):
            try:
                confidence = predictor(dataset.read_image(sample)).confidence
                scores[sample.id] = refine.disagreement(dataset.read_mask(sample), confidence)
            except (ImageLoadError, DatasetError, ValueError) as e:  # left out of the queue, and said so
                unreadable.append(str(e))
        if unreadable:
            gr.Warning(f"{len(unreadable)} samples left out: " + "; ".join(unreadable[:3]))
        if not scores:
            raise gr.Error("No sample of this dataset could be read: " + "; ".join(unreadable[:3]))
        state = {"root": str(dataset.root), "model": model_name, "scores": scores, "position": 0,
                 "all": sorted(scores, key=lambda i: -scores[i])}
        state["order"] = _filtered(dataset, state["all"], status_filter)
        gr.Info(note.splitlines()[0])
        return show(state, band_width) + [key]

    def refilter(state: dict | None, status_filter: str, band_width: float):
        if state:
            state = {**state, "order": _filtered(Dataset.open(state["root"]), state["all"], status_filter), "position": 0}
        return show(state, band_width)

    def step(state: dict | None, delta: int, band_width: float):
        if state and state["order"]:
            state = {**state, "position": (state["position"] + delta) % len(state["order"])}
        return show(state, band_width)

    def decide(state: dict | None, decision: str, band_width: float, edited: dict | None):
        if not state or not state["order"]:
            raise gr.Error("Open a dataset first.")
        shown_id, shown_width, proposal = state.get("shown") or (None, None, None)
        if (shown_id, shown_width) == (state["order"][state["position"]], band_width):
            dataset = Dataset.open(state["root"])
            sample = dataset[shown_id]
        else:  # the band width changed without a redraw: propose again
            dataset, sample, _, _, _, proposal = current(state, band_width)
        mask = proposal if decision == "accept" else None
        if decision == "edit":
            layers = [np.asarray(layer) for layer in (edited or {}).get("layers") or []]
            if not layers or not any(layer.shape[-1] == 4 and layer[..., 3].any() for layer in layers):
                raise gr.Error("Paint on the editor first: pink adds to the person, cyan removes.")
            mask = proposal
            for layer in layers:
                mask = refine.apply_strokes(mask, layer, ADD, REMOVE)
        details = {**refine.provenance(dataset, sample, band_width, state["model"]), "method": refine.METHOD
                   if decision != "edit" else "brush"}
        review.decide(dataset, sample.id, decision, mask, details)
        return step(state, 1, band_width)

    with gr.Row():
        archive = gr.File(label="dataset zip (this format, images/ + masks/, COCO, Supervisely or LabelMe)",
                          file_types=[".zip"], elem_id="refine-archive")
        folder = gr.Textbox(label="or a dataset folder on this server", visible=LOCAL)
        with gr.Column():
            status_filter = gr.Radio(list(FILTERS), value="all", label="show")
            band_width = gr.Slider(10, 120, value=refine.CANONICAL_WIDTH, step=5,
                                   label="band width W (pixels for a 512x512 portrait)")
            open_button = gr.Button("Open", variant="primary", elem_id="refine-open")
    header = gr.Markdown(elem_id="refine-header")
    with gr.Row():
        views = [gr.Image(label=name, interactive=False)
                 for name in ("annotation", "model prediction", "proposed refinement")]
    editor = gr.ImageEditor(label="edit the proposal (tinted): pink paints person, cyan paints background; "
                                  "undo per stroke; then 'Save edit'", type="numpy", layers=False,
                            brush=gr.Brush(colors=[_hex(ADD), _hex(REMOVE)], default_size=12, color_mode="fixed"))
    with gr.Row():
        previous = gr.Button("◀ Previous (p)", elem_id="refine-previous")
        reject = gr.Button("Reject (r)", elem_id="refine-reject")
        accept = gr.Button("Accept (a)", variant="primary", elem_id="refine-accept")
        save_edit = gr.Button("Save edit", elem_id="refine-edit")
        following = gr.Button("Next ▶ (n)", elem_id="refine-next")

    outputs = views + [editor, header, queue]
    open_button.click(open_dataset, [archive, folder, browser_key, status_filter, band_width, model],
                      outputs + [browser_key], api_name="refine_open")
    status_filter.change(refilter, [queue, status_filter, band_width], outputs, api_name="refine_filter")
    band_width.release(lambda s, w: show(s, w), [queue, band_width], outputs, api_name="refine_band")
    previous.click(lambda s, w: step(s, -1, w), [queue, band_width], outputs, api_name="refine_previous")
    following.click(lambda s, w: step(s, 1, w), [queue, band_width], outputs, api_name="refine_next")
    accept.click(lambda s, w: decide(s, "accept", w, None), [queue, band_width], outputs, api_name="refine_accept")
    reject.click(lambda s, w: decide(s, "reject", w, None), [queue, band_width], outputs, api_name="refine_reject")
    save_edit.click(lambda s, w, e: decide(s, "edit", w, e), [queue, band_width, editor], outputs,
                    api_name="refine_edit")
    return queue


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _filtered(dataset: Dataset, ordered: list[str], status_filter: str) -> list[str]:
    if status_filter == "all":
        return list(ordered)
    return [i for i in ordered if i in dataset.samples and review.status(dataset[i]) == status_filter]


SHORTCUTS = """
<script>
document.addEventListener("keydown", (event) => {
  const tag = (event.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
  const ids = {a: "refine-accept", r: "refine-reject", n: "refine-next", p: "refine-previous"};
  const button = ids[event.key] && document.getElementById(ids[event.key]);
  if (button && button.offsetParent !== null) { button.click(); event.preventDefault(); }
});
</script>
"""
