"""The Export & retrain tab: download the refined dataset, fine-tune on it, compare, switch weights."""
from __future__ import annotations

import math
from collections import Counter

import gradio as gr
import pandas as pd

from banet import WeightsError
from data_tools import review
from data_tools.dataset import DatasetError
from data_tools.export import DOWNLOADS, export_download
from training.job import FineTuneJob, JobError, JobStatus

from .downloads import session_folder
from .jobs import JobRegistry
from .messages import user_error
from .review_session import ReviewSession
from .settings import Settings

TERMS = ("loss", "segmentation", "boundary", "refine")
POLL_SECONDS = 2.0


def export(session: ReviewSession | None, kind: str, request: gr.Request, progress=gr.Progress()) -> str:
    if session is None:
        raise user_error("Open a dataset in the Refine tab first.")
    dataset = session.dataset()
    out = session_folder(request) / f"refined-{kind}.zip"
    progress(0, desc=f"writing {len(dataset)} samples")
    try:
        export_download(dataset, out, kind)
    except DatasetError as e:
        raise user_error(str(e)) from e
    except OSError as e:
        raise user_error(f"The export could not be written ({e.strerror or e}); nothing was changed.") from e
    return str(out)


def _owner(request: gr.Request) -> str:
    return request.session_hash or ""


class JobHandlers:
    """The tab's fine-tuning handlers over the server's job registry; a session reaches only its own jobs."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs

    def start(self, session: ReviewSession | None, iterations: float, held_out: float, model: str,
              request: gr.Request):
        if session is None:
            raise user_error("Open a dataset in the Refine tab first.")
        if not (isinstance(iterations, (int, float)) and math.isfinite(iterations)
                and isinstance(held_out, (int, float)) and 0 < held_out < 1):
            raise user_error("Iterations must be a number, and the held-out share between 0 and 1.")

        def make(folder, max_seconds):
            return FineTuneJob(folder, session.dataset(), model, round(iterations), held_out,
                               name=session.name, max_seconds=max_seconds)

        try:
            job_id = self.jobs.start(_owner(request), make)
        except (JobError, WeightsError, DatasetError) as e:
            raise user_error(str(e)) from e
        return [job_id, *self.poll(job_id, request)]

    def poll(self, job_id: str | None, request: gr.Request) -> list:
        """Status line, loss curve, comparison table, the switch and download buttons, Start (off while a
        job runs), Cancel (shown only then), the timer and the held-out curve, for one job."""
        job = self.jobs.get(job_id, _owner(request))
        if job is None:
            return ["No fine-tuning started in this session.", None, "", gr.Button(visible=False),
                    gr.Button(visible=False), gr.Button(interactive=True), gr.Button(visible=False),
                    gr.Timer(active=False), None]
        status = job.status()
        done = status.state == "done"
        return [describe(status), curve(status), status.table, gr.Button(visible=done), gr.Button(visible=done),
                gr.Button(interactive=not status.running), gr.Button(visible=status.running),
                gr.Timer(active=status.running), held_out_curve(status)]

    def cancel(self, job_id: str | None, request: gr.Request) -> list:
        job = self.jobs.get(job_id, _owner(request))
        if job is None:
            raise user_error("No fine-tuning is running in this session.")
        job.cancel()
        job.wait(timeout=30)
        return self.poll(job_id, request)

    def use_weights(self, job_id: str | None, request: gr.Request) -> list:
        job = self.jobs.get(job_id, _owner(request))
        status = job.status() if job else None
        if not status or not status.weights:
            raise user_error("No fine-tuned weights in this session yet.")
        gr.Info("This session now uses the fine-tuned weights.")
        return [status.weights, f"Weights: `{job.label}`, fine-tuned in this session"]

    def download_weights(self, job_id: str | None, request: gr.Request) -> str:
        """The fine-tuned weights as a zip named by dataset and date: they outlive the session this way."""
        job = self.jobs.get(job_id, _owner(request))
        if job is None:
            raise user_error("No fine-tuned weights in this session yet.")
        try:
            return str(job.pack_weights(session_folder(request)))
        except JobError as e:
            raise user_error(str(e)) from e


def describe(status: JobStatus) -> str:
    line = f"**{status.state}** · iteration {status.iteration} of {status.iterations}"
    timed = [r for r in status.rows if r.get("seconds")]
    if timed and status.iteration:
        elapsed = float(timed[-1]["seconds"])
        line += f" ({status.iteration / status.iterations:.0%}) · {_duration(elapsed)} elapsed"
        if status.running and status.iteration < status.iterations:
            left = elapsed / status.iteration * (status.iterations - status.iteration)
            line += f" · about {_duration(left)} of training left"
    losses = [r for r in status.rows if r.get("loss")]
    if losses:
        line += f" · loss {float(losses[-1]['loss']):.4f}"
    scored = [r for r in status.rows if r.get("val_iou")]
    if scored:  # training scores at its own input size; the table below scores the photos as the app does
        line += f" · held-out IoU while training {100 * float(scored[-1]['val_iou']):.2f} (at the training size)"
    return line + (f"\n\n{status.message}" if status.message else "")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def curve(status: JobStatus) -> pd.DataFrame | None:
    """Long-format loss terms by iteration, for gr.LinePlot."""
    points = [{"iteration": int(r["iteration"]), "term": term, "value": float(r[term])}
              for r in status.rows if r.get("loss") for term in TERMS]
    return pd.DataFrame(points) if points else None


def held_out_curve(status: JobStatus) -> pd.DataFrame | None:
    """Held-out IoU (%) by iteration, as training measures it, for gr.LinePlot."""
    points = [{"iteration": int(r["iteration"]), "IoU": 100 * float(r["val_iou"])}
              for r in status.rows if r.get("val_iou")]
    return pd.DataFrame(points) if points else None


def describe_dataset(session: ReviewSession | None) -> str:
    """What export and fine-tuning will work on: the dataset open in Refine, with its decisions."""
    if session is None:
        return "No dataset open: open one in the Refine tab first."
    dataset = session.dataset()
    counts = Counter(review.status(sample) for sample in dataset)
    decided = ", ".join(f"{counts[s]} {s}" for s in review.STATUSES if counts[s])
    return (f"Dataset **{session.name}**: {len(dataset)} samples ({decided}), with every decision made so far "
            "in the Refine tab.")


def build(review_state: gr.State, model: gr.State, model_note: gr.Markdown, settings: Settings, jobs: JobRegistry,
          tab: gr.Tab) -> None:
    """Lay out the tab inside the current Blocks context; `tab` is this tab (its selection refreshes the summary)."""
    default, heavy = settings.weights, settings.heavy
    job = gr.State(None)  # this session's job id
    dataset_note = gr.Markdown(describe_dataset(None), elem_id="export-dataset")
    with gr.Row():
        kind = gr.Radio([(label, key) for key, label in DOWNLOADS.items()], value="dataset", label="export as")
        with gr.Column():
            export_button = gr.Button("Export", elem_id="export-go")
            download = gr.File(label="download", elem_id="export-file")
    with gr.Row():
        iterations = gr.Slider(10, 4000, value=300, step=10, label="fine-tuning iterations",
                               elem_id="retrain-iterations")
        held_out = gr.Slider(0.05, 0.5, value=0.2, step=0.05,
                             label="held out for the comparison (when the dataset has no val/test split)")
        with gr.Column():
            start_button = gr.Button("Fine-tune from the current weights", variant="primary",
                                     elem_id="retrain-start")
            cancel_button = gr.Button("Cancel", variant="stop", visible=False)
    status = gr.Markdown(elem_id="retrain-status")
    with gr.Row():
        plot = gr.LinePlot(x="iteration", y="value", color="term", title="training loss", height=260)
        held_plot = gr.LinePlot(x="iteration", y="IoU", title="held-out IoU (%) while training", height=260)
    table = gr.Markdown()
    with gr.Row():
        use = gr.Button("Use the fine-tuned weights", visible=False)
        save = gr.Button("Download the fine-tuned weights", visible=False)
        reset = gr.Button("Back to the default weights")
    weights_file = gr.File(label="fine-tuned weights: model.safetensors, config.json and model card, for "
                                 "load_model() once unzipped", elem_id="retrain-weights")
    timer = gr.Timer(POLL_SECONDS, active=False)

    shown = [status, plot, table, use, save, start_button, cancel_button, timer, held_plot]
    tab.select(describe_dataset, review_state, dataset_note, show_progress="hidden")
    export_button.click(export, [review_state, kind], download, api_name="export_dataset", **heavy)
    handlers = JobHandlers(jobs)
    start_button.click(handlers.start, [review_state, iterations, held_out, model], [job, *shown],
                       api_name="retrain_start")
    timer.tick(handlers.poll, job, shown, api_name="retrain_status", show_progress="hidden")
    cancel_button.click(handlers.cancel, job, shown, api_name="retrain_cancel")
    use.click(handlers.use_weights, job, [model, model_note], api_name="retrain_use")
    save.click(handlers.download_weights, job, weights_file, api_name="retrain_weights")
    reset.click(lambda: [default, f"Weights: `{default}`"], None, [model, model_note], api_name="retrain_reset")
