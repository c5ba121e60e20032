"""The Export & retrain tab: download the refined dataset, fine-tune on it, compare, switch weights."""
from __future__ import annotations

import os
import shutil
import uuid

import gradio as gr
import pandas as pd

from banet import WeightsError
from data_tools.dataset import Dataset, DatasetError
from data_tools.export import DOWNLOADS, export_download
from training.job import FineTuneJob, JobError, JobStatus

from .downloads import session_folder
from .refine_tab import WORKSPACE

JOBS_DIR = WORKSPACE.parent / "jobs"
MAX_JOBS = int(os.environ.get("BANET_MAX_JOBS", 1))  # fine-tuning jobs at once on this server
JOBS: dict[str, FineTuneJob] = {}  # by job id; a session keeps only its own id
OWNERS: dict[str, str] = {}  # job id -> session hash, to clean up when the session ends
TERMS = ("loss", "segmentation", "boundary", "refine")
POLL_SECONDS = 2.0


def export(queue: dict | None, kind: str, request: gr.Request, progress=gr.Progress()) -> str:
    if not queue:
        raise gr.Error("Open a dataset in the Refine tab first.")
    dataset = Dataset.open(queue["root"])
    out = session_folder(request) / f"refined-{kind}.zip"
    progress(0, desc=f"writing {len(dataset)} samples")
    try:
        export_download(dataset, out, kind)
    except DatasetError as e:
        raise gr.Error(str(e)) from e
    return str(out)


def start(queue: dict | None, iterations: float, held_out: float, model: str, job_id: str | None,
          request: gr.Request):
    if not queue:
        raise gr.Error("Open a dataset in the Refine tab first.")
    if job_id in JOBS and JOBS[job_id].status().running:
        raise gr.Error("This session's fine-tuning is still running: cancel it or wait for it to end.")
    if sum(job.status().running for job in JOBS.values()) >= MAX_JOBS:
        raise gr.Error("Another fine-tuning job is running on this server; try again when it has ended.")
    job_id = uuid.uuid4().hex
    try:
        job = FineTuneJob(JOBS_DIR / job_id, Dataset.open(queue["root"]), model, int(iterations), held_out,
                          name=queue.get("name", "dataset"))
    except (JobError, WeightsError, DatasetError) as e:
        raise gr.Error(str(e)) from e
    job.start()
    JOBS[job_id], OWNERS[job_id] = job, request.session_hash or ""
    return [job_id, *poll(job_id)]


def poll(job_id: str | None) -> list:
    """Status line, loss curve, comparison table, the switch and download buttons, Start (off while a
    job runs), Cancel (shown only then) and the timer, for one job."""
    if job_id not in JOBS:
        return ["No fine-tuning started in this session.", None, "", gr.Button(visible=False),
                gr.Button(visible=False), gr.Button(interactive=True), gr.Button(visible=False),
                gr.Timer(active=False)]
    status = JOBS[job_id].status()
    done = status.state == "done"
    return [describe(status), curve(status), status.table, gr.Button(visible=done), gr.Button(visible=done),
            gr.Button(interactive=not status.running), gr.Button(visible=status.running),
            gr.Timer(active=status.running)]


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
    if scored:
        line += f" · held-out IoU {100 * float(scored[-1]['val_iou']):.2f}"
    return line + (f"\n\n{status.message}" if status.message else "")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def curve(status: JobStatus) -> pd.DataFrame | None:
    """Long-format loss terms by iteration, for gr.LinePlot."""
    points = [{"iteration": int(r["iteration"]), "term": term, "value": float(r[term])}
              for r in status.rows if r.get("loss") for term in TERMS]
    return pd.DataFrame(points) if points else None


def cancel(job_id: str | None) -> list:
    if job_id not in JOBS:
        raise gr.Error("No fine-tuning is running in this session.")
    JOBS[job_id].cancel()
    JOBS[job_id].wait(timeout=30)
    return poll(job_id)


def end_session(request: gr.Request) -> None:
    """Cancel the session's fine-tuning and delete its job folders: no one else can reach them."""
    for job_id in [j for j, owner in OWNERS.items() if owner == request.session_hash]:
        job = JOBS.pop(job_id)
        del OWNERS[job_id]
        job.cancel()
        job.wait(timeout=30)
        shutil.rmtree(job.folder, ignore_errors=True)


def use_weights(job_id: str | None) -> list:
    status = JOBS[job_id].status() if job_id in JOBS else None
    if not status or not status.weights:
        raise gr.Error("No fine-tuned weights in this session yet.")
    gr.Info("This session now uses the fine-tuned weights.")
    return [status.weights, f"Weights: `{JOBS[job_id].label}`, fine-tuned in this session"]


def download_weights(job_id: str | None, request: gr.Request) -> str:
    """The fine-tuned weights as a zip named by dataset and date: they outlive the session this way."""
    if job_id not in JOBS:
        raise gr.Error("No fine-tuned weights in this session yet.")
    try:
        return str(JOBS[job_id].pack_weights(session_folder(request)))
    except JobError as e:
        raise gr.Error(str(e)) from e


def build(queue: gr.State, model: gr.State, model_note: gr.Markdown, default: str) -> None:
    """Lay out the tab inside the current Blocks context."""
    job = gr.State(None)  # this session's job id
    gr.Markdown("The dataset opened in the Refine tab, with every decision made so far.")
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
    plot = gr.LinePlot(x="iteration", y="value", color="term", title="training loss", height=260)
    table = gr.Markdown()
    with gr.Row():
        use = gr.Button("Use the fine-tuned weights", visible=False)
        save = gr.Button("Download the fine-tuned weights", visible=False)
        reset = gr.Button("Back to the default weights")
    weights_file = gr.File(label="fine-tuned weights: model.safetensors, config.json and model card, for "
                                 "load_model() once unzipped", elem_id="retrain-weights")
    timer = gr.Timer(POLL_SECONDS, active=False)

    shown = [status, plot, table, use, save, start_button, cancel_button, timer]
    export_button.click(export, [queue, kind], download, api_name="export_dataset")
    start_button.click(start, [queue, iterations, held_out, model, job], [job, *shown], api_name="retrain_start")
    timer.tick(poll, job, shown, api_name="retrain_status", show_progress="hidden")
    cancel_button.click(cancel, job, shown, api_name="retrain_cancel")
    use.click(use_weights, job, [model, model_note], api_name="retrain_use")
    save.click(download_weights, job, weights_file, api_name="retrain_weights")
    reset.click(lambda: [default, f"Weights: `{default}`"], None, [model, model_note], api_name="retrain_reset")
