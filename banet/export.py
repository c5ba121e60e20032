"""Export a BANet checkpoint to ONNX: `python -m banet.export --weights NAME --output model.onnx`.

`cached_onnx(model)` exports once per set of weights and reuses the file: the Predictor's CPU
default. The cache folder is $BANET_CACHE, else $XDG_CACHE_HOME/banet, else ~/.cache/banet.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .hub import DEFAULT_MODEL, load_model
from .image_io import ImageInput, load_rgb, photo_files, working_size
from .model import BANet
from .predictor import prepare_batch

OPSET = 17
CACHE_FILES = 16  # exported graphs kept (about 2.4 MB each); the least recently used go first


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


def quantize_int8(onnx_path: str | os.PathLike, output: str | os.PathLike, calibration: Sequence[ImageInput],
                  input_size: int) -> Path:
    """Static int8 quantisation with ONNX Runtime's tools (QDQ, per-channel weights, min-max ranges)
    calibrated on `calibration` photos prepared exactly as the Predictor prepares them. Written atomically."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.photos = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            photo = next(self.photos, None)
            if photo is None:
                return None
            rgb = load_rgb(photo)
            return {"image": prepare_batch([rgb], working_size(*rgb.shape[:2], input_size))}

    output = Path(output)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(onnx_path), str(prepared))
        quantize_static(str(prepared), str(quantized), Photos(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        graph = onnx.load(quantized)
        del graph.metadata_props[:]
        graph.metadata_props.extend(onnx.load(onnx_path).metadata_props)
        onnx.save(graph, quantized)
        os.replace(quantized, output)
    return output


def export_key(model: BANet) -> str:
    """SHA-256 of the model's config, every tensor of its state, the exporter's versions and this
    package's source (a change to the model's code retires every cached graph)."""
    digest = hashlib.sha256()
    header = {"config": getattr(model, "_hub_mixin_config", {}), "opset": OPSET,
              "torch": torch.__version__, "onnx": onnx.__version__}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where exported graphs are cached (read from the environment at each call)."""
    if os.environ.get("BANET_CACHE"):
        return Path(os.environ["BANET_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "banet"


def cached_onnx(model: BANet, folder: str | os.PathLike | None = None) -> Path:
    """The ONNX file for these weights, exported on first use into `folder` (default `cache_dir()`).
    Concurrent exports are safe: each writes a temporary file and renames it."""
    path = Path(folder or cache_dir()) / f"banet-{export_key(model)[:32]}.onnx"
    if path.is_file():
        path.touch()  # most recently used
        return path
    export_onnx(model, path)
    _prune(path.parent)
    return path


def _prune(folder: Path) -> None:
    """Delete all but the CACHE_FILES most recently used graphs (other processes may prune too)."""
    used = []
    for file in folder.glob("banet-*.onnx"):
        try:
            used.append((file.stat().st_mtime, file))
        except FileNotFoundError:
            continue
    for _, old in sorted(used)[:-CACHE_FILES]:
        old.unlink(missing_ok=True)


def calibration_photos(folder: Path, limit: int) -> list[Path]:
    """Up to `limit` photos of `folder` (or its images/ subfolder), evenly spread over its sorted names."""
    photos = photo_files(folder)
    step = max(1, len(photos) // limit)
    return photos[::step][:limit]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m banet.export", description=__doc__)
    parser.add_argument("--weights", default=DEFAULT_MODEL,
                        help="bundled name, folder with model.safetensors, or Hub repo id")
    parser.add_argument("--output", required=True, type=Path, help="where to write the .onnx file")
    parser.add_argument("--int8", type=Path, metavar="PHOTOS",
                        help="also write <output>.int8.onnx, calibrated on the photos of this folder (training photos)")
    parser.add_argument("--calibration-photos", type=int, default=64, help="how many photos --int8 reads")
    args = parser.parse_args(argv)
    model = load_model(args.weights)
    path = export_onnx(model, args.output)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.int8:
        photos = calibration_photos(args.int8, args.calibration_photos)
        if not photos:
            raise SystemExit(f"--int8: no .jpg or .png photos in {args.int8}")
        int8 = quantize_int8(path, path.with_suffix(".int8.onnx"), photos, model.input_size)
        print(f"wrote {int8} ({int8.stat().st_size / 1e6:.1f} MB), calibrated on {len(photos)} photos")


if __name__ == "__main__":
    main()
