"""The Refine tab: open a dataset, review model-guided refinements worst first, decide.

The review logic is `review_session.ReviewSession`; this module draws its views and wires the buttons.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import gradio as gr
import numpy as np

from banet.masks import person
from data_tools import refine
from data_tools.archive import ArchiveError
from data_tools.dataset import Dataset, DatasetError

from . import disk
from .downloads import used_uploads
from .inputs import EditInput
from .messages import user_error
from .models import Predictors
from .panels import Panel
from .review_session import FILTERS, ReviewError, ReviewSession, ReviewView
from .settings import Settings, is_loopback
from .uploads import EVICTED, open_upload, proposal_cache
from .views import matte_view, overlay, tint

ADD, REMOVE = (255, 0, 180), (0, 229, 255)  # brush colours: paint the person / paint background


def _hex(rgb: tuple[int, int, int], opacity: float = 1.0) -> str:
    """A CSS colour; the brush paints at this opacity, so the edge under a stroke stays visible."""
    return "rgba({}, {}, {}, {})".format(*rgb, opacity)


BRUSH = gr.Brush(colors=[_hex(ADD, 0.6), _hex(REMOVE, 0.6)], default_size=12, color_mode="fixed")
PROPOSAL_TINT = 0.5  # how strongly the proposed mask tints the photo under the brush
EMPTY = "No dataset open, or no sample matches the filter."


def draw(view: ReviewView | None) -> list:
    """The four panels, the editor (the photo tinted by the proposal; the brush back to 'add' for each
    sample) and the header, for one view."""
    if view is None:
        return [None, None, None, None, None, EMPTY]
    image, proposal = view.image, view.proposal
    editor = gr.update(value={"background": tint(image, person(proposal.mask), ADD, PROPOSAL_TINT), "layers": [],
                              "composite": None}, brush=BRUSH)
    return [overlay(image, person(view.annotation)), overlay(image, view.confidence >= 0.5),
            overlay(image, person(proposal.mask)), matte_view(proposal.alpha, proposal.band), editor, view.header()]


def disk_message(error: OSError, what: str) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{what}: the server's disk is full. Nothing was changed; try again later."
    return f"{what} ({error.strerror or error}). Nothing was changed."


class RefineHandlers:
    """The tab's handlers: each takes the session's ReviewSession (or None) and returns the views and it."""

    def __init__(self, predictors: Predictors, settings: Settings) -> None:
        self.predictors, self.settings = predictors, settings

    def show(self, session: ReviewSession | None, band_px: float) -> list:
        view = None
        if session is not None:
            try:
                view = session.view(self.predictors(session.model), proposal_cache(session.root), int(band_px))
            except (DatasetError, FileNotFoundError) as e:  # removed meanwhile (pruned, or evicted for room)
                raise user_error(f"This dataset is no longer on the server ({e}); open it again.") from e
        return draw(view) + [session]

    def open_dataset(self, archive: str | None, folder: str, key: str, status_filter: str, band_px: float,
                     model: str, request: gr.Request, progress=gr.Progress()) -> list:
        key = key or os.urandom(12).hex()
        client = getattr(getattr(request, "client", None), "host", None) or ""
        server_folders = self.settings.allow_server_folders and is_loopback(client)
        used_uploads(request, archive)
        try:
            if archive:
                dataset, note = open_upload(Path(archive), key, self.settings)
            elif folder and server_folders:
                dataset, note = Dataset.open(folder), f"opened {folder}"
                if dataset.read_only:
                    raise DatasetError(f"{folder} has no manifest.jsonl; import it first "
                                       "(python -m data_tools.import) so decisions can be saved")
            else:
                raise user_error("Upload a zip archive" + (" or give a dataset folder on this machine."
                                                         if server_folders else "."))
            name = Path(archive).stem if archive else Path(folder).name
            session, unreadable = ReviewSession.open(
                dataset, model, self.predictors(model), proposal_cache(dataset.root), name, int(band_px),
                lambda samples: progress.tqdm(samples, desc="refining: likely improvements first"))
            session.filter(status_filter)
        except (ArchiveError, DatasetError, ReviewError, disk.DiskFull) as e:
            raise user_error(str(e)) from e
        except OSError as e:
            raise user_error(disk_message(e, "The dataset could not be unpacked")) from e
        if unreadable:
            gr.Warning(f"{len(unreadable)} samples left out: " + "; ".join(unreadable[:3]))
        gr.Info(note.splitlines()[0])
        if note.endswith(EVICTED):
            gr.Info(EVICTED)
        return self.show(session, band_px) + [key]

    def refilter(self, session: ReviewSession | None, status_filter: str, band_px: float) -> list:
        if session is not None:
            session.filter(status_filter)
        return self.show(session, band_px)

    def previous(self, session: ReviewSession | None, band_px: float) -> list:
        return self._step(session, -1, band_px)

    def next(self, session: ReviewSession | None, band_px: float) -> list:
        return self._step(session, 1, band_px)

    def _step(self, session: ReviewSession | None, delta: int, band_px: float) -> list:
        if session is not None:
            session.step(delta)
        return self.show(session, band_px)

    def accept(self, session: ReviewSession | None, band_px: float) -> list:
        return self._decide(session, "accept", band_px)

    def reject(self, session: ReviewSession | None, band_px: float) -> list:
        return self._decide(session, "reject", band_px)

    def save_edit(self, session: ReviewSession | None, band_px: float, edited: dict | None) -> list:
        layers = [np.asarray(layer) for layer in (edited or {}).get("layers") or []]
        if not layers or not any(layer.shape[-1] == 4 and layer[..., 3].any() for layer in layers):
            raise user_error("Paint on the editor first: pink adds to the person, cyan removes.")
        if session is None or session.shown is None:
            raise user_error("Open a dataset first.")
        mask = session.shown[2].mask
        for layer in layers:
            mask = refine.apply_strokes(mask, layer, ADD, REMOVE)
        return self._decide(session, "edit", band_px, mask)

    def _decide(self, session: ReviewSession | None, decision: str, band_px: float,
                edited: np.ndarray | None = None) -> list:
        if session is None:
            raise user_error("Open a dataset first.")
        sample_id = session.shown[0] if session.shown else None
        try:
            session.decide(decision, int(band_px), edited)
        except ReviewError as e:
            raise user_error(str(e)) from e
        except OSError as e:
            raise user_error(disk_message(e, "The decision was not saved")) from e
        gr.Info(f"{sample_id}: {'edit saved' if decision == 'edit' else decision + 'ed'}")
        return self.show(session, band_px)


def build(predictors: Predictors, model: gr.State, settings: Settings) -> gr.State:
    """Lay out the tab inside the current Blocks context; returns the session's ReviewSession state."""
    handlers = RefineHandlers(predictors, settings)
    browser_key = gr.BrowserState("", storage_key="banet-workbench-key")
    session = gr.State(None, time_to_live=settings.state_minutes * 60)  # this session's ReviewSession
    heavy = settings.heavy
    with gr.Row():
        archive = gr.File(label="dataset zip (this format, images/ + masks/, COCO, Supervisely or LabelMe)",
                          file_types=[".zip"], elem_id="refine-archive")
        folder = gr.Textbox(label="or a dataset folder on this machine", visible=settings.allow_server_folders)
        with gr.Column():
            status_filter = gr.Radio(list(FILTERS), value="all", label="show")
            band_px = gr.Slider(0, 150, value=0, step=1, label="band width in pixels (0 = automatic: "
                                "W = 50 for a 512x512 portrait, scaled to the person; wider for a "
                                "quick polygon)")
            open_button = gr.Button("Open", variant="primary", elem_id="refine-open")
    header = gr.Markdown(elem_id="refine-header")
    with gr.Row():
        views = [Panel(label=name, interactive=False)
                 for name in ("annotation", "model prediction", "proposed refinement", "matte (band in amber)")]
    editor = EditInput(label="edit the proposal (tinted): pink paints person, cyan paints background; "
                             "undo per stroke; then 'Save edit'", type="numpy", layers=False, height=640,
                       brush=BRUSH)
    editor.max_pixels = settings.max_side ** 2  # edit layers larger than a working-size photo are refused
    with gr.Row():
        previous = gr.Button("◀ Previous (p)", elem_id="refine-previous")
        reject = gr.Button("Reject (r)", elem_id="refine-reject")
        accept = gr.Button("Accept (a)", variant="primary", elem_id="refine-accept")
        save_edit = gr.Button("Save edit", elem_id="refine-edit")
        following = gr.Button("Next ▶ (n)", elem_id="refine-next")

    outputs = views + [editor, header, session]
    open_button.click(handlers.open_dataset, [archive, folder, browser_key, status_filter, band_px, model],
                      outputs + [browser_key], api_name="refine_open", **heavy)
    status_filter.change(handlers.refilter, [session, status_filter, band_px], outputs, api_name="refine_filter",
                         **heavy)
    band_px.change(handlers.show, [session, band_px], outputs, api_name="refine_band", trigger_mode="always_last",
                   **heavy)
    previous.click(handlers.previous, [session, band_px], outputs, api_name="refine_previous", **heavy)
    following.click(handlers.next, [session, band_px], outputs, api_name="refine_next", **heavy)
    accept.click(handlers.accept, [session, band_px], outputs, api_name="refine_accept", **heavy)
    reject.click(handlers.reject, [session, band_px], outputs, api_name="refine_reject", **heavy)
    save_edit.click(handlers.save_edit, [session, band_px, editor], outputs, api_name="refine_edit", **heavy)
    return session


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
