"""Export a BANet checkpoint to ONNX: `python -m banet.export --weights NAME --output model.onnx`."""
from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from .hub import DEFAULT_MODEL, load_model
from .model import BANet

OPSET = 17


class _Probabilities(nn.Module):
    """Graph outputs as probabilities: confidence, and attention when the model has one."""

    def __init__(self, model: BANet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        if out.attention_logits is None:
            return (torch.sigmoid(out.logits),)
        return torch.sigmoid(out.logits), torch.sigmoid(out.attention_logits)


def export_onnx(model: BANet, path: str | os.PathLike, sample_size: int = 512) -> Path:
    """Write an ONNX graph with input "image" (N,3,H,W) in [0,1], H and W multiples of 32 (the
    Predictor pads), outputs "confidence" and "attention", and the training size as metadata
    "input_size". Written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # eval() on the wrapper too: the exporter restores the wrapper's mode on the whole tree.
    wrapper = _Probabilities(model.cpu().eval()).eval()
    outputs = ["confidence"] + (["attention"] if model.boundary_attention else [])
    dynamic = {"image": {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({name: {0: "batch", 2: "height", 3: "width"} for name in outputs})
    sample = torch.rand(1, 3, sample_size, sample_size)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(wrapper, (sample,), tmp, input_names=["image"], output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
        graph = onnx.load(tmp)
        graph.metadata_props.add(key="input_size", value=str(model.input_size))
        onnx.save(graph, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m banet.export", description=__doc__)
    parser.add_argument("--weights", default=DEFAULT_MODEL,
                        help="bundled name, folder with model.safetensors, or Hub repo id")
    parser.add_argument("--output", required=True, type=Path, help="where to write the .onnx file")
    args = parser.parse_args(argv)
    path = export_onnx(load_model(args.weights), args.output)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
