"""CPU/GPU latency table for BANet:
`python -m benchmarks.latency [--weights NAME] [--device cuda] [--compile] [--cuda-graph] [--int8 PHOTOS]`.

Prints parameters, GFLOPs at 512x512 and the median latency per image of each backend at
224x224, 512x512 and 1024x768 (W x H), with the thread count: PyTorch (eager, channels-last,
optionally compiled; on a GPU also float16 and bfloat16 autocast, and optionally float16 replayed
as a CUDA graph) and ONNX Runtime at each graph optimisation level, optionally with the int8 graph
calibrated on PHOTOS (on a GPU only where ONNX Runtime has its CUDA provider). Network only: the
whole call (resizing, upsampling) is in benchmarks/compare.py. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from banet import DEFAULT_MODEL, BANet, OnnxBackend, count_parameters, load_model
from banet.export import cached_onnx, calibration_photos, quantize_int8

SIZES = ((224, 224), (512, 512), (768, 1024))  # (H, W)


def gflops(model: BANet, size: int = 512) -> float:
    """Forward FLOPs (2 per multiply-add) of one size x size image."""
    device = next(model.parameters()).device
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.rand(1, 3, size, size, device=device))
    return counter.get_total_flops() / 1e9


def interleaved_ms(runs: dict[Hashable, Callable[[], object]], rounds: int, repeats: int,
                   warmup: int = 5) -> dict[Hashable, float]:
    """Median milliseconds per call of each run, timed in `rounds` interleaved passes of `repeats`
    calls each, so that a slow spell of a shared machine falls on every row alike."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[Hashable, list[float]] = {key: [] for key in runs}
    for _ in tqdm(range(rounds), desc="rounds", leave=False):
        for key, run in runs.items():
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - start)
    return {key: 1000 * statistics.median(t) for key, t in times.items()}


def torch_runner(model: BANet, x: torch.Tensor, device: torch.device,
                 dtype: torch.dtype | None = None) -> Callable[[], object]:
    """Runs the model on x; with `dtype`, under autocast to it (float16 / bfloat16 on a GPU)."""
    x = x.to(device)

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def cuda_graph_runner(module: Callable, x: torch.Tensor, device: torch.device) -> Callable[[], object]:
    """Replays one captured forward pass of a float16 channels-last `module` on a fixed input
    buffer: no Python or kernel-launch overhead left."""
    static = x.to(device).half().contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up outside the graph, as torch.cuda.graphs asks
                module(static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = module(static)
    buffers = (module, static, output)  # the graph reads and writes these: they must live as long as it

    def run():
        graph.replay()
        torch.cuda.synchronize()
        return buffers
    return run


def backends(model: BANet, graphs: dict[str, Path], device: torch.device, compile_: bool,
             cuda_graph: bool) -> dict[str, Callable]:
    """name -> factory(batch as NCHW numpy) -> zero-argument runner. `graphs`: ONNX files by label."""
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
    if device.type == "cuda":
        for dtype in (torch.float16, torch.bfloat16):
            out[f"pytorch {dtype}".replace("torch.", "")] = lambda a, dtype=dtype: torch_runner(
                channels_last, torch.from_numpy(a).contiguous(memory_format=torch.channels_last), device, dtype)
        if cuda_graph:
            half = copy.deepcopy(channels_last).half()
            out["pytorch float16, CUDA graph"] = lambda a: cuda_graph_runner(half, torch.from_numpy(a), device)
            if compile_:
                compiled_half = torch.compile(half, dynamic=False)
                out["pytorch compiled float16, CUDA graph"] = lambda a: cuda_graph_runner(
                    compiled_half, torch.from_numpy(a), device)
    for label, path in graphs.items():
        for level in ("all", "extended", "basic") if label == "float32" else ("all",):
            session = OnnxBackend(path, threads=torch.get_num_threads(), optimization=level)
            name = f"onnxruntime {label}, {level} optimisations" + (" (the CPU default)" if label == "float32"
                                                                     and level == "all" else "")
            out[name] = lambda a, session=session: (lambda: session(a))
    return out


def onnx_runs_on(device: torch.device) -> bool:
    """Whether ONNX Runtime can time `device`: always on a CPU, on a GPU only with its CUDA provider."""
    import onnxruntime as ort

    return device.type == "cpu" or "CUDAExecutionProvider" in ort.get_available_providers()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__)
    parser.add_argument("--weights", default=DEFAULT_MODEL)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes over every backend and size")
    parser.add_argument("--repeats", type=int, default=10, help="calls per backend, size and round")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    parser.add_argument("--cuda-graph", action="store_true", help="on a GPU, also time float16 as a CUDA graph")
    parser.add_argument("--batch", type=int, default=1, help="images per call; times are per image")
    parser.add_argument("--int8", type=Path, metavar="PHOTOS", help="also time the int8 graph calibrated on PHOTOS")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_model(args.weights)

    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"float32": cached_onnx(model)} if onnx_runs_on(device) else {}
        if args.int8 and graphs:
            photos = calibration_photos(args.int8, 64)
            graphs["int8"] = quantize_int8(graphs["float32"], Path(tmp) / "int8.onnx", photos, model.input_size)
        runners = backends(model, graphs, device, args.compile, args.cuda_graph)
        batches = {(h, w): np.random.default_rng(0).random((args.batch, 3, h, w), dtype=np.float32) for h, w in SIZES}
        ms = interleaved_ms({(name, size): factory(batch) for name, factory in runners.items()
                             for size, batch in batches.items()}, args.rounds, args.repeats)

    print(f"BANet ({args.weights}): {count_parameters(model) / 1e6:.3f} M parameters, "
          f"{gflops(model):.2f} GFLOPs at 512x512")
    print(f"device: {device}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, median of {args.rounds} x {args.repeats} interleaved runs, batch {args.batch}\n")
    digits = 3 if device.type == "cuda" else 1
    print("| backend | " + " | ".join(f"{w}x{h} ms" for h, w in SIZES) + " | images/s at 512x512 |")
    print("|" + "---|" * (len(SIZES) + 2))
    for name in runners:
        per_image = [ms[name, size] / args.batch for size in SIZES]
        print(f"| {name} | " + " | ".join(f"{t:.{digits}f}" for t in per_image)
              + f" | {1000 / ms[name, (512, 512)] * args.batch:.0f} |")


if __name__ == "__main__":
    main()
