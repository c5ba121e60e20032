"""Inference backends: both take a float32 (N,3,H,W) batch in [0,1], H and W multiples of 32,
and return (confidence, attention-or-None) as float32 (N,1,H,W) arrays.

`make_backend` picks the fastest for the machine: ONNX Runtime on a CPU (1.6-2x faster than eager
PyTorch at the working size, see benchmarks/latency.py), PyTorch on a GPU.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .model import BANet

logger = logging.getLogger(__name__)
BACKENDS = ("auto", "onnxruntime", "torch")


class Backend(Protocol):
    name: str
    device: str | torch.device  # where it runs: "cpu", "cuda", ...
    input_size: int  # long side photos are resized to (the weights' config)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


def auto_device() -> torch.device:
    """CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class TorchBackend:
    """Eager PyTorch on any device; channels-last memory layout (faster convolutions on CPU).

    Takes ownership of `model`: it is put in eval mode and moved in place.
    """

    name = "torch"

    def __init__(self, model: BANet, device: str | torch.device = "auto") -> None:
        self.device = auto_device() if str(device) == "auto" else torch.device(device)
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.input_size = model.input_size

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            out = self.model(x)
            confidence = torch.sigmoid(out.logits).float().cpu().numpy()
            attention = (
                None if out.attention_logits is None
                else torch.sigmoid(out.attention_logits).float().cpu().numpy()
            )
        return confidence, attention


SPINNING = "session.intra_op.allow_spinning"  # ONNX Runtime's session setting: threads busy-wait after a run


class OnnxBackend:
    """ONNX Runtime on a model written by `banet.export.export_onnx` (CUDA provider when present)."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, optimization: str = "all",
                 spin: bool = True) -> None:
        """`threads`: intra-op threads (default: ONNX Runtime's, one per physical core); `optimization`:
        ONNX Runtime's graph optimisation level, "basic", "extended" or "all" (adds layout changes);
        `spin`: the threads busy-wait after a run for the next one, which speeds calls made back to
        back but takes the cores from other work done between calls (the app's panels)."""
        import onnxruntime as ort

        levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[optimization]
        options.add_session_config_entry(SPINNING, "1" if spin else "0")
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(str(Path(path)), options, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.outputs = [o.name for o in self.session.get_outputs()]
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.input_size = int(metadata.get("input_size", 512))  # 512: BANet default, for foreign files

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        results = self.session.run(None, {"image": batch})
        named = dict(zip(self.outputs, results))
        return named["confidence"], named.get("attention")


def make_backend(model: BANet, backend: str = "auto", device: str | torch.device = "auto",
                 threads: int | None = None, spin: bool = True) -> Backend:
    """A backend for `model`: "onnxruntime" (exported once per weights, see `banet.export.cached_onnx`),
    "torch", or "auto": ONNX Runtime when the device is a CPU, else PyTorch. "auto" falls back to
    PyTorch, with a warning, when the export cannot be written or loaded. ONNX Runtime runs on
    `threads`, default `torch.get_num_threads()`: one knob for both backends; `spin`: see OnnxBackend.

    Example:
        >>> backend = make_backend(load_model("banet-64"))  # OnnxBackend on a CPU-only machine
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    resolved = auto_device() if str(device) == "auto" else torch.device(device)
    if backend == "torch" or (backend == "auto" and resolved.type != "cpu"):
        return TorchBackend(model, resolved)
    from .export import cached_onnx  # the exporter imports onnx: only when this path is taken

    try:
        return OnnxBackend(cached_onnx(model), threads=threads or torch.get_num_threads(), spin=spin)
    except Exception as e:  # unwritable cache, exporter or runtime failure: any of them
        if backend == "onnxruntime":
            raise
        logger.warning("ONNX Runtime unavailable (%s: %s); using PyTorch", e.__class__.__name__, e)
        return TorchBackend(model, resolved)
