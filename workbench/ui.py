"""The Gradio interface: tabs over shared predictors; every result and weights choice lives in session state."""
from __future__ import annotations

import shutil
import threading

import gradio as gr
from starlette.middleware import Middleware

from banet import ImageLoadError, load_rgb

from . import disk, refine_tab, retrain_tab, viewer
from .compose import MODES, cutout, parse_colour, replace_background
from .downloads import DOWNLOADS, UPLOADS, remove_session, save_png, used_uploads
from .inputs import PhotoInput
from .jobs import JobRegistry
from .messages import user_error
from .models import Predictors
from .panels import Panel
from .settings import APP_CACHE, JOBS_DIR, MB, WORKSPACE, Settings
from .views import DIFFERENCE_LEGEND, example_images

HEAD = refine_tab.SHORTCUTS  # pass to launch(head=...): keyboard shortcuts of the Refine tab
SWEEP_SECONDS = 600
INTRO = """# BANet Workbench
Portrait segmentation with a boundary-aware network. **Inspect** a photo (the mask, the model's
boundary attention and the edges it follows) or replace its background; **Compare** a photo's
annotation with the model; **Refine** a dataset's coarse annotations with the model's help, sample
by sample; **Export** the result and **fine-tune** the model on it. Your files and results stay in
this browser session."""


def sweep(settings: Settings, jobs: JobRegistry) -> None:
    """What sessions that never closed left: old uploads, downloads and ended jobs. Runs now and then
    every SWEEP_SECONDS in a daemon thread."""
    ttl = settings.state_minutes * 60
    disk.prune(WORKSPACE, settings.keep_days)
    for session in DOWNLOADS.glob("*"):
        disk.sweep_older(session, ttl)
    jobs.evict(ttl)
    timer = threading.Timer(SWEEP_SECONDS, sweep, (settings, jobs))
    timer.daemon = True
    timer.start()


class ViewerHandlers:
    """Inspect, threshold, compose and Compare over the shared predictors; bad input is answered as a message."""

    def __init__(self, predictors: Predictors, settings: Settings) -> None:
        self.predictors, self.settings = predictors, settings

    def inspect(self, photo: str | None, threshold: float, model: str, request: gr.Request) -> list:
        if photo is None:
            raise user_error("Upload a photo or pick an example first.")
        used_uploads(request, photo)
        try:
            result = viewer.inspect(self.predictors(model), photo, threshold, self.settings.max_side)
        except ImageLoadError as e:
            raise user_error(str(e)) from e
        return result.panels() + [result.summary(), result]

    @staticmethod
    def rethreshold(last: viewer.Inspection | None, threshold: float) -> list:
        """A new threshold redraws the mask panel from the session's last result, without the model."""
        if last is None:
            return [gr.skip(), gr.skip()]
        shown = last.rethresholded(threshold)
        return shown.panels(("mask overlay",)) + [shown.summary()]

    def compose(self, last: viewer.Inspection | None, mode: str, colour: str, blur: float, background: str | None,
                request: gr.Request) -> list:
        if last is None:
            raise user_error("Segment a photo first.")
        used_uploads(request, background)
        image, confidence = last.prediction.image, last.prediction.confidence
        try:
            replacement = None if background is None else load_rgb(background, self.settings.max_side)
            composite = replace_background(image, confidence, mode, parse_colour(colour), blur, replacement)
        except ValueError as e:  # ImageLoadError included
            raise user_error(str(e)) from e
        files = [save_png(composite, "composite.png", request),
                 save_png(cutout(image, confidence), "cutout-alpha.png", request)]
        return [files[0], files]  # the written PNG is shown as it is: no second encoding

    def compare(self, photo: str | None, annotation: str | None, threshold: float, model: str,
                request: gr.Request) -> list:
        if photo is None or not annotation:
            raise user_error("Upload a photo and its annotation (mask image, or LabelMe / Supervisely / COCO JSON).")
        used_uploads(request, photo, annotation)
        try:
            result = viewer.compare(self.predictors(model), photo, annotation, threshold, self.settings.max_side)
        except ValueError as e:  # ImageLoadError included
            raise user_error(str(e)) from e
        return [result.difference, result.annotation, result.table()]


def build_app(settings: Settings = Settings()) -> gr.Blocks:
    """The app's layout and wiring; the handlers are ViewerHandlers and the tabs' own."""
    weights, heavy = settings.weights, settings.heavy
    predictors = Predictors(upsampling=settings.upsampling)
    predictors(weights)  # load the default now: a bad weights folder fails at start-up, not in a request
    jobs = JobRegistry(disk.instance_folder(JOBS_DIR), settings.max_jobs, settings.job_minutes * 60)
    jobs.recover()  # killed servers' training processes and job folders
    # sessions do not outlive their server: nor do their downloads, nor the uploads in a killed app's cache
    for folder in disk.dead_instances(DOWNLOADS.parent) + disk.dead_instances(APP_CACHE):
        shutil.rmtree(folder, ignore_errors=True)
    sweep(settings, jobs)
    examples, handlers = example_images(), ViewerHandlers(predictors, settings)

    def end_session(request: gr.Request) -> None:
        remove_session(request)
        jobs.end_session(request.session_hash or "")

    ttl = settings.state_minutes * 60
    # delete_cache: Gradio's copies of uploads and results older than an hour, checked every 10 minutes
    with gr.Blocks(title="BANet Workbench", delete_cache=(600, 3600)) as app:
        gr.Markdown(INTRO)
        model = gr.State(weights)  # this session's weights: the default, or its own fine-tuned ones
        model_note = gr.Markdown(f"Weights: `{weights}`")
        last = gr.State(None, time_to_live=ttl)  # this session's last viewer.Inspection
        with gr.Tab("Inspect"):
            with gr.Row():
                photo = PhotoInput(label="photo", type="filepath", image_mode=None, elem_id="inspect-photo")
                with gr.Column():
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="mask threshold",
                                          elem_id="inspect-threshold")
                    example = gr.Dropdown(list(examples), value=None, label="built-in example")
                    go = gr.Button("Segment", variant="primary", elem_id="inspect-go")
                    timing = gr.Markdown(elem_id="inspect-timing")
            with gr.Row():
                outputs = [Panel(label=name, interactive=False, elem_id="inspect-" + name.replace(" ", "-"))
                           for name in viewer.PANELS]
            with gr.Accordion("Replace the background", open=False):
                with gr.Row():
                    mode = gr.Radio(list(MODES), value="blur", label="new background")
                    colour = gr.ColorPicker("#00b140", label="colour")
                    blur = gr.Slider(1, 40, value=12, step=1, label="blur strength")
                    background = PhotoInput(label="background image", type="filepath", image_mode=None)
                compose_button = gr.Button("Compose")
                with gr.Row():
                    composite = gr.Image(label="composite", interactive=False)
                    downloads = gr.File(label="download (PNG, and a cutout with alpha)", file_count="multiple")
        with gr.Tab("Compare"):
            with gr.Row():
                compare_photo = PhotoInput(label="photo (the one in Inspect, unless you upload another)",
                                           type="filepath", image_mode=None, elem_id="compare-photo")
                annotation = gr.File(label="annotation: mask image, or LabelMe / Supervisely / COCO JSON",
                                     file_types=["image", ".json"], elem_id="compare-annotation")
                with gr.Column():
                    compare_threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="mask threshold")
                    compare_button = gr.Button("Compare", variant="primary", elem_id="compare-go")
            with gr.Row():
                difference = Panel(label=DIFFERENCE_LEGEND, interactive=False)
                annotation_view = Panel(label="the annotation, as read", interactive=False)
                metrics = gr.Markdown(elem_id="compare-metrics")
        with gr.Tab("Refine"):
            review = refine_tab.build(predictors, model, settings)
        with gr.Tab("Export & retrain") as export_tab:
            retrain_tab.build(review, model, model_note, settings, jobs, export_tab)
        example.change(lambda name: examples.get(name), example, photo)
        photo.change(lambda new: new, photo, compare_photo, show_progress="hidden")  # Compare starts from it
        model.change(lambda: [None, None], None, [composite, downloads])  # made with the other weights
        go.click(handlers.inspect, [photo, threshold, model], outputs + [timing, last], api_name="inspect", **heavy)
        threshold.input(handlers.rethreshold, [last, threshold],
                        [outputs[viewer.PANELS.index("mask overlay")], timing], api_name="inspect_threshold",
                        trigger_mode="always_last", show_progress="hidden")
        compose_button.click(handlers.compose, [last, mode, colour, blur, background], [composite, downloads],
                             api_name="compose", **heavy)
        compare_button.click(handlers.compare, [compare_photo, annotation, compare_threshold, model],
                             [difference, annotation_view, metrics], api_name="compare", **heavy)
        app.unload(end_session)
    return app


def launch(settings: Settings, **kwargs) -> gr.Blocks:
    """Build and serve the app with the operator's settings; kwargs go to Blocks.launch."""
    app = build_app(settings)
    app.queue(default_concurrency_limit=settings.heavy_calls)
    budget = Middleware(disk.UploadBudget, folder=UPLOADS, limit=settings.cache_disk_mb * MB)
    app.launch(server_name=settings.host, server_port=settings.port, max_file_size=settings.max_file_size,
               head=HEAD, app_kwargs={"middleware": [budget]}, **kwargs)
    return app
