"""The Gradio interface: tabs over shared predictors; every result and weights choice lives in session state."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import gradio as gr
import numpy as np
from starlette.middleware import Middleware

from banet import ImageLoadError, Prediction, load_rgb
from banet.image_io import image_size, shrink_to
from banet.metrics import evaluate_pair, gradient_alignment
from data_tools.importers import mask_from_annotation_file

from . import disk, refine_tab, retrain_tab
from .compose import MODES, cutout, parse_colour, replace_background
from .downloads import DOWNLOADS, UPLOADS, remove_session, save_png, used_uploads
from .jobs import JobRegistry
from .inputs import PhotoInput
from .models import Predictors
from .settings import APP_CACHE, JOBS_DIR, MB, WORKSPACE, Settings
from .views import DISPLAY_SIDE, difference_overlay, example_images, inspect_views, overlay

HEAD = refine_tab.SHORTCUTS  # pass to launch(head=...): keyboard shortcuts of the Refine tab
SWEEP_SECONDS = 600
PANELS = ("confidence", "mask overlay", "boundary attention", "image gradient", "prediction gradient")


def _summary(shown: Prediction, about: str) -> str:
    """The line under Inspect's button: model time, and how much of the photo is person."""
    return (f"{shown.seconds * 1000:.0f} ms model time at long side {about}; "
            f"person covers {shown.mask.mean():.0%} of the photo")


def rethreshold(last: dict | None, threshold: float):
    """A new threshold redraws the mask panel from the session's last result, without the model."""
    if not last:
        return gr.skip(), gr.skip()
    shown = last["shown"].resized(DISPLAY_SIDE, threshold)
    return overlay(shown.image, shown.mask), _summary(shown, last["about"])


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


def build_app(settings: Settings = Settings()) -> gr.Blocks:
    weights, heavy = settings.weights, {"concurrency_id": "heavy", "concurrency_limit": settings.heavy_calls}
    predictors = Predictors()
    predictors(weights)  # load the default now: a bad weights folder fails at start-up, not in a request
    jobs = JobRegistry(JOBS_DIR, settings.max_jobs, settings.job_minutes * 60)
    jobs.recover()  # a previous server's training processes and job folders
    # sessions do not outlive the server: nor do their files, nor (when the cache is this app's own) uploads
    shutil.rmtree(APP_CACHE if UPLOADS == APP_CACHE else DOWNLOADS, ignore_errors=True)
    sweep(settings, jobs)
    examples = example_images()

    def read_photo(path: str) -> np.ndarray:
        """The photo at the app's working size; ImageLoadError answered as a message."""
        try:
            return load_rgb(path, settings.max_side)
        except ImageLoadError as e:
            raise gr.Error(str(e)) from e

    def inspect(image: str | None, threshold: float, model: str, request: gr.Request):
        if image is None:
            raise gr.Error("Upload a photo or pick an example first.")
        used_uploads(request, image)
        predictor = predictors(model)
        result = predictor(read_photo(image))
        shown = result.resized(DISPLAY_SIDE, threshold)  # the predictor is shared: threshold per request
        views = inspect_views(shown)
        last = {"prediction": result, "shown": shown, "about": f"{predictor.input_size} ({predictor.backend.name})"}
        return [views.get(name) for name in PANELS] + [_summary(shown, last["about"]), last]

    def compose(last: dict | None, mode: str, colour: str, blur: float, background: str | None,
                request: gr.Request):
        if not last:
            raise gr.Error("Segment a photo first.")
        used_uploads(request, background)
        image, confidence = last["prediction"].image, last["prediction"].confidence
        try:
            composite = replace_background(image, confidence, mode, parse_colour(colour),
                                           blur, None if background is None else read_photo(background))
        except ValueError as e:  # ImageLoadError included
            raise gr.Error(str(e)) from e
        files = [save_png(composite, "composite.png", request),
                 save_png(cutout(image, confidence), "cutout-alpha.png", request)]
        return files[0], files  # the written PNG is shown as it is: no second encoding

    def compare(image: str | None, annotation_file: str | None, threshold: float, model: str, request: gr.Request):
        if image is None or not annotation_file:
            raise gr.Error("Upload a photo and its annotation (mask image, or LabelMe / Supervisely / COCO JSON).")
        used_uploads(request, image, annotation_file)
        result = predictors(model)(read_photo(image))
        try:  # the annotation is drawn at the photo's own size, then shrunk as the photo was
            full = mask_from_annotation_file(Path(annotation_file), *image_size(image))
            annotation = shrink_to(full, settings.max_side) > 127
        except (ImageLoadError, ValueError) as e:
            raise gr.Error(str(e)) from e
        result.threshold = threshold
        scores = evaluate_pair(result.mask, annotation)  # gradient alignment below: each mask in its own band
        rows = [("IoU", scores["iou"]), ("boundary F (2 px)", scores["boundary_f"]),
                ("Boundary IoU", scores["boundary_iou"]),
                ("gradient alignment, prediction", gradient_alignment(result.mask, result.image)),
                ("gradient alignment, annotation", gradient_alignment(annotation, result.image))]
        table = "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {100 * v:.2f} |" for k, v in rows)
        return difference_overlay(result.image, result.mask, annotation), table

    def end_session(request: gr.Request) -> None:
        remove_session(request)
        jobs.end_session(request.session_hash or "")

    ttl = settings.state_minutes * 60
    # delete_cache: Gradio's copies of uploads and results older than an hour, checked every 10 minutes
    with gr.Blocks(title="BANet Workbench", delete_cache=(600, 3600)) as app:
        gr.Markdown("# BANet Workbench")
        model = gr.State(weights)  # this session's weights: the default, or its own fine-tuned ones
        model_note = gr.Markdown(f"Weights: `{weights}`")
        last = gr.State(None, time_to_live=ttl)  # this session's last Inspect result: working and display size
        with gr.Tab("Inspect"):
            with gr.Row():
                photo = PhotoInput(label="photo", type="filepath", image_mode=None, elem_id="inspect-photo")
                with gr.Column():
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="mask threshold")
                    example = gr.Dropdown(list(examples), value=None, label="built-in example")
                    go = gr.Button("Segment", variant="primary", elem_id="inspect-go")
                    timing = gr.Markdown(elem_id="inspect-timing")
            with gr.Row():
                outputs = [gr.Image(label=name, interactive=False, format="jpeg",
                                    elem_id="inspect-" + name.replace(" ", "-")) for name in PANELS]
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
                compare_photo = PhotoInput(label="photo", type="filepath", image_mode=None, elem_id="compare-photo")
                annotation = gr.File(label="annotation: mask image, or LabelMe / Supervisely / COCO JSON",
                                     file_types=["image", ".json"], elem_id="compare-annotation")
                with gr.Column():
                    compare_threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="mask threshold")
                    compare_button = gr.Button("Compare", variant="primary", elem_id="compare-go")
            with gr.Row():
                difference = gr.Image(label="green: both, red: model only, blue: annotation only",
                                      interactive=False)
                metrics = gr.Markdown(elem_id="compare-metrics")
        with gr.Tab("Refine"):
            review = refine_tab.build(predictors, model, settings)
        with gr.Tab("Export & retrain"):
            retrain_tab.build(review, model, model_note, settings, jobs)
        example.change(lambda name: examples.get(name), example, photo)
        go.click(inspect, [photo, threshold, model], outputs + [timing, last], api_name="inspect", **heavy)
        threshold.input(rethreshold, [last, threshold], [outputs[PANELS.index("mask overlay")], timing],
                        api_name="inspect_threshold", trigger_mode="always_last", show_progress="hidden")
        compose_button.click(compose, [last, mode, colour, blur, background], [composite, downloads],
                             api_name="compose", **heavy)
        compare_button.click(compare, [compare_photo, annotation, compare_threshold, model], [difference, metrics],
                             api_name="compare", **heavy)
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
