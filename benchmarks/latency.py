"""CPU/GPU latency table for BANet: `python -m benchmarks.latency [--weights NAME] [--compile]`.

Prints parameters, GFLOPs at 512x512 and the median latency per image of each backend at
224x224, 512x512 and 1024x768 (W x H), with the thread count. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from banet import DEFAULT_MODEL, BANet, OnnxBackend, count_parameters, load_model
from banet.export import export_onnx

SIZES = ((224, 224), (512, 512), (768, 1024))  # (H, W)


def gflops(model: BANet, size: int = 512) -> float:
    """Forward FLOPs (2 per multiply-add) of one size x size image."""
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.rand(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9


def median_ms(run: Callable[[], object], warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def torch_runner(model: BANet, x: torch.Tensor, device: torch.device) -> Callable[[], object]:
    x = x.to(device)

    def run():
        with torch.inference_mode():
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def backends(model: BANet, onnx_path: Path, device: torch.device, compile_: bool) -> dict[str, Callable]:
    """name -> factory(batch as NCHW numpy) -> zero-argument runner."""
    eager = model.to(device).eval()
    channels_last = copy.deepcopy(eager).to(memory_format=torch.channels_last)
    out = {
        "pytorch eager": lambda a: torch_runner(eager, torch.from_numpy(a), device),
        "pytorch channels-last": lambda a: torch_runner(
            channels_last, torch.from_numpy(a).contiguous(memory_format=torch.channels_last), device),
    }
    if compile_:
        compiled = torch.compile(channels_last)
        out["pytorch compiled"] = lambda a: torch_runner(
            compiled, torch.from_numpy(a).contiguous(memory_format=torch.channels_last), device)
    session = OnnxBackend(onnx_path, threads=torch.get_num_threads())
    out["onnxruntime"] = lambda a: (lambda: session(a))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--weights", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_model(args.weights)

    with tempfile.TemporaryDirectory() as tmp:
        runners = backends(model, export_onnx(model, Path(tmp) / "banet.onnx"), device, args.compile)
        rows = {}
        for name, factory in tqdm(runners.items(), desc="backends", leave=False):
            rows[name] = []
            for h, w in SIZES:
                batch = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
                rows[name].append(median_ms(factory(batch), warmup=5, repeats=args.repeats))

    print(f"BANet ({args.weights}): {count_parameters(model) / 1e6:.3f} M parameters, "
          f"{gflops(model):.2f} GFLOPs at 512x512")
    print(f"device: {device}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, median of {args.repeats} runs, batch 1\n")
    header = "| backend | " + " | ".join(f"{w}x{h} ms" for h, w in SIZES) + " |"
    print(header)
    print("|" + "---|" * (len(SIZES) + 1))
    for name, times in rows.items():
        print(f"| {name} | " + " | ".join(f"{t:.1f}" for t in times) + " |")


if __name__ == "__main__":
    main()
