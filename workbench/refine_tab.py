"""The Refine tab: open a dataset, review model-guided refinements worst first, decide."""
from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
from pathlib import Path

import gradio as gr
import numpy as np

from banet import ImageLoadError
from data_tools import refine, review
from data_tools.archive import ArchiveError, open_archive, unpacked_size
from data_tools.dataset import Dataset, DatasetError
from data_tools.proposals import ProposalCache

from . import disk
from .downloads import used_uploads
from .inputs import EditInput
from .models import Predictors
from .settings import MB, WORKSPACE, Settings
from .views import matte_view, overlay, tint

FILTERS = ("all", *review.STATUSES)
ADD, REMOVE = (255, 0, 180), (0, 229, 255)  # brush colours: paint the person / paint background
PROPOSAL_TINT = 0.35  # how strongly the proposed mask tints the photo under the brush


def _proposal_cache(root: Path) -> ProposalCache:
    """Beside an uploaded dataset, so that pruning removes both; for a server folder (local use
    only), under the workspace, never inside the user's folder."""
    root = Path(root).resolve()
    if root.is_relative_to(WORKSPACE.resolve()):
        return ProposalCache(root.parent / "proposals")
    return ProposalCache(WORKSPACE.parent / "proposals" / hashlib.sha256(str(root).encode()).hexdigest()[:16])


def _upload_dir(browser_key: str, archive: Path) -> Path:
    """Per-browser, per-archive folder: the same upload in the same browser reopens its decisions."""
    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    key = "".join(c for c in browser_key if c.isalnum())[:32] or "anonymous"
    return WORKSPACE / key / digest.hexdigest()[:16]


def _from_loopback(request: gr.Request | None) -> bool:
    host = getattr(getattr(request, "client", None), "host", None) or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_upload(archive: Path, key: str, settings: Settings) -> tuple[Dataset, str]:
    """Unpack (or reopen) an uploaded archive within the disk budgets; returns the dataset and a note."""
    workdir = _upload_dir(key, archive)
    budget = settings.session_disk_mb * MB
    if not (workdir / "dataset").is_dir():
        needed = disk.UPLOAD_FACTOR * unpacked_size(archive)
        evicted = disk.make_room(WORKSPACE, workdir, needed, budget, settings.total_disk_mb * MB,
                                 settings.state_minutes * 60)
        if any(p.parent == workdir.parent for p in evicted):
            gr.Info("Your oldest uploads were removed to make room for this one.")
    dataset, kind, report = open_archive(archive, workdir, settings.max_side, budget // disk.UPLOAD_FACTOR)
    return dataset, f"opened {kind} archive" + (f": {report.summary()}" if report else "")


def build(predictors: Predictors, model: gr.State, settings: Settings) -> gr.State:
    """Lay out the tab inside the current Blocks context; returns the session's review queue state."""
    browser_key = gr.BrowserState("", storage_key="banet-workbench-key")
    # {"root", "model", "all", "order", "position", "shown"}: this session's review queue
    queue = gr.State(None, time_to_live=settings.state_minutes * 60)
    heavy = {"concurrency_id": "heavy", "concurrency_limit": settings.heavy_calls}

    def current(state: dict, band_px: float):
        dataset = Dataset.open(state["root"])
        sample = dataset[state["order"][state["position"]]]
        image, annotation = dataset.read_image(sample), dataset.read_mask(sample)
        confidence = predictors(state["model"])(image).confidence
        params = refine.RefineParams(band_px=int(band_px))
        proposal = _proposal_cache(dataset.root).refinement(
            dataset, sample, params, state["model"], lambda: refine.refine(image, annotation, confidence, params))
        return dataset, sample, image, annotation, confidence, proposal

    def show(state: dict | None, band_px: float):
        if not state or not state["order"]:
            return [None, None, None, None, None, "No dataset open, or no sample matches the filter.", state]
        dataset, sample, image, annotation, confidence, proposal = current(state, band_px)
        done, total = review.progress(dataset)
        header = (f"**{sample.id}** ({state['position'] + 1} of {len(state['order'])} in this view) · "
                  f"status: {review.status(sample)} · {_verdict(proposal)} · band {proposal.band_px} px · "
                  f"{done} of {total} reviewed")
        background = tint(image, proposal.mask > 127, ADD, PROPOSAL_TINT)
        editor = {"background": background, "layers": [], "composite": None}
        state = {**state, "shown": (sample.id, band_px, proposal)}  # what a decision on it accepts
        return [overlay(image, annotation > 127), overlay(image, confidence >= 0.5),
                overlay(image, proposal.mask > 127), matte_view(proposal.alpha, proposal.band), editor, header, state]

    def open_dataset(archive: str | None, folder: str, key: str, status_filter: str, band_px: float,
                     model_name: str, request: gr.Request, progress=gr.Progress()):
        if not key:
            key = os.urandom(12).hex()
        server_folders = settings.allow_server_folders and _from_loopback(request)
        used_uploads(request, archive)
        try:
            if archive:
                dataset, note = _open_upload(Path(archive), key, settings)
            elif folder and server_folders:
                dataset, note = Dataset.open(folder), f"opened {folder}"
                if dataset.read_only:
                    raise DatasetError(f"{folder} has no manifest.jsonl; import it first "
                                       "(python -m data_tools.import) so decisions can be saved")
            else:
                raise gr.Error("Upload a zip archive" + (" or give a dataset folder on this machine."
                                                         if server_folders else "."))
        except (ArchiveError, DatasetError, disk.DiskFull) as e:
            raise gr.Error(str(e)) from e
        except OSError as e:
            raise gr.Error(_disk_message(e, "The dataset could not be unpacked")) from e
        predictor, scores, unreadable = predictors(model_name), {}, []
        params, cache = refine.RefineParams(band_px=int(band_px)), _proposal_cache(dataset.root)
        for sample in progress.tqdm(list(dataset), desc="refining: likely improvements first"):
            try:
                proposal = cache.refinement(dataset, sample, params, model_name,
                                            lambda: refine.refine_sample(dataset, sample, predictor, params))
                scores[sample.id] = proposal.priority
            except (ImageLoadError, DatasetError, ValueError) as e:  # left out of the queue, and said so
                unreadable.append(str(e))
        if unreadable:
            gr.Warning(f"{len(unreadable)} samples left out: " + "; ".join(unreadable[:3]))
        if not scores:
            raise gr.Error("No sample of this dataset could be read: " + "; ".join(unreadable[:3]))
        state = {"root": str(dataset.root), "model": model_name, "position": 0,
                 "name": Path(archive).stem if archive else Path(folder).name,
                 "all": sorted(scores, key=scores.get, reverse=True)}
        state["order"] = _filtered(dataset, state["all"], status_filter)
        gr.Info(note.splitlines()[0])
        return show(state, band_px) + [key]

    def refilter(state: dict | None, status_filter: str, band_px: float):
        if state:
            state = {**state, "order": _filtered(Dataset.open(state["root"]), state["all"], status_filter), "position": 0}
        return show(state, band_px)

    def step(state: dict | None, delta: int, band_px: float):
        if state and state["order"]:
            state = {**state, "position": (state["position"] + delta) % len(state["order"])}
        return show(state, band_px)

    def decide(state: dict | None, decision: str, band_px: float, edited: dict | None):
        if not state or not state["order"]:
            raise gr.Error("Open a dataset first.")
        shown_id, shown_px, proposal = state.get("shown") or (None, None, None)
        if (shown_id, shown_px) != (state["order"][state["position"]], band_px):
            raise gr.Error("The band width changed since this proposal was drawn: look at the new one first.")
        dataset = Dataset.open(state["root"])
        sample = dataset[shown_id]
        mask = proposal.mask if decision == "accept" else None
        if decision == "edit":
            layers = [np.asarray(layer) for layer in (edited or {}).get("layers") or []]
            if not layers or not any(layer.shape[-1] == 4 and layer[..., 3].any() for layer in layers):
                raise gr.Error("Paint on the editor first: pink adds to the person, cyan removes.")
            mask = proposal.mask
            for layer in layers:
                mask = refine.apply_strokes(mask, layer, ADD, REMOVE)
        details = refine.provenance(dataset, sample, proposal, state["model"])
        if decision == "edit":
            details["method"] = "brush"
        try:
            review.decide(dataset, sample.id, decision, mask, details)
        except OSError as e:
            raise gr.Error(_disk_message(e, "The decision was not saved")) from e
        return step(state, 1, band_px)

    with gr.Row():
        archive = gr.File(label="dataset zip (this format, images/ + masks/, COCO, Supervisely or LabelMe)",
                          file_types=[".zip"], elem_id="refine-archive")
        folder = gr.Textbox(label="or a dataset folder on this machine", visible=settings.allow_server_folders)
        with gr.Column():
            status_filter = gr.Radio(list(FILTERS), value="all", label="show")
            band_px = gr.Slider(0, 150, value=0, step=1, label="band width in pixels (0 = automatic: "
                                "W = 50 for a 512x512 portrait, scaled to the person)")
            open_button = gr.Button("Open", variant="primary", elem_id="refine-open")
    header = gr.Markdown(elem_id="refine-header")
    with gr.Row():
        views = [gr.Image(label=name, interactive=False)
                 for name in ("annotation", "model prediction", "proposed refinement", "matte (band in amber)")]
    editor = EditInput(label="edit the proposal (tinted): pink paints person, cyan paints background; "
                                  "undo per stroke; then 'Save edit'", type="numpy", layers=False,
                            brush=gr.Brush(colors=[_hex(ADD), _hex(REMOVE)], default_size=12, color_mode="fixed"))
    with gr.Row():
        previous = gr.Button("◀ Previous (p)", elem_id="refine-previous")
        reject = gr.Button("Reject (r)", elem_id="refine-reject")
        accept = gr.Button("Accept (a)", variant="primary", elem_id="refine-accept")
        save_edit = gr.Button("Save edit", elem_id="refine-edit")
        following = gr.Button("Next ▶ (n)", elem_id="refine-next")

    outputs = views + [editor, header, queue]
    editor.max_pixels = settings.max_side ** 2  # edit layers larger than a working-size photo are refused
    open_button.click(open_dataset, [archive, folder, browser_key, status_filter, band_px, model],
                      outputs + [browser_key], api_name="refine_open", **heavy)
    status_filter.change(refilter, [queue, status_filter, band_px], outputs, api_name="refine_filter", **heavy)
    band_px.change(lambda s, w: show(s, w), [queue, band_px], outputs, api_name="refine_band",
                   trigger_mode="always_last", **heavy)
    previous.click(lambda s, w: step(s, -1, w), [queue, band_px], outputs, api_name="refine_previous", **heavy)
    following.click(lambda s, w: step(s, 1, w), [queue, band_px], outputs, api_name="refine_next", **heavy)
    accept.click(lambda s, w: decide(s, "accept", w, None), [queue, band_px], outputs, api_name="refine_accept",
                 **heavy)
    reject.click(lambda s, w: decide(s, "reject", w, None), [queue, band_px], outputs, api_name="refine_reject",
                 **heavy)
    save_edit.click(lambda s, w, e: decide(s, "edit", w, e), [queue, band_px, editor], outputs,
                    api_name="refine_edit", **heavy)
    return queue


def _disk_message(error: OSError, what: str) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what}: the server's disk is full. Nothing was changed; try again later."
    return f"{what} ({error.strerror or error}). Nothing was changed."


def _verdict(proposal: refine.Refinement) -> str:
    """How far to trust the proposal, in words, with its confidence (the gain in edge alignment)."""
    if not proposal.changed:
        return f"no change proposed: the annotation already follows the photo's edges (gain {proposal.confidence:+.3f})"
    flag = "⚠ doubtful, check it closely" if proposal.doubtful else "likely improvement"
    return f"{flag} (confidence: edge alignment {proposal.confidence:+.3f})"


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
