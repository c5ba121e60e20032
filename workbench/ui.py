"""The Gradio interface: a viewer of BANet's outputs on one photo."""
from __future__ import annotations

import gradio as gr
import numpy as np

from banet import DEFAULT_MODEL, ImageLoadError, Predictor, load_model

from .views import example_images, inspect_views

PANELS = ("confidence", "mask overlay", "boundary attention", "image gradient", "prediction gradient")


def build_app(weights: str = DEFAULT_MODEL) -> gr.Blocks:
    predictor = Predictor(load_model(weights))
    examples = example_images()

    def run(image: np.ndarray | None, threshold: float):
        if image is None:
            raise gr.Error("Upload a photo or pick an example first.")
        try:
            result = predictor(image)
        except ImageLoadError as e:
            raise gr.Error(str(e)) from e
        result.threshold = threshold  # per request: the predictor is shared by every session
        views = inspect_views(result)
        timing = (f"{result.seconds * 1000:.0f} ms model time at long side {predictor.input_size} "
                  f"({predictor.backend.name}); person covers {result.mask.mean():.0%} of the photo")
        return [views.get(name) for name in PANELS] + [timing]

    with gr.Blocks(title="BANet Workbench") as app:
        gr.Markdown(f"# BANet Workbench\nWeights: `{weights}`"
                    + (" (**untrained placeholder**: outputs are noise)" if "untrained" in weights else ""))
        with gr.Row():
            photo = gr.Image(label="photo", type="numpy", image_mode="RGB")
            with gr.Column():
                threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="mask threshold")
                example = gr.Dropdown(list(examples), label="built-in example")
                go = gr.Button("Segment", variant="primary")
                timing = gr.Markdown()
        with gr.Row():
            outputs = [gr.Image(label=name, interactive=False) for name in PANELS]
        example.change(lambda name: examples.get(name), example, photo)
        go.click(run, [photo, threshold], outputs + [timing], api_name="inspect")
    return app
