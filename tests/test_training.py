"""The training recipe: config, schedule, augmentation, a short real run, resume, evaluation."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from banet import BANet, load_model
from banet.hub import local_folder
from benchmarks import shapes
from data_tools.dataset import Dataset
from data_tools.importers import import_into, read_folders
from training import evaluate, train
from training.card import recorded_stages, training_record
from training.shrink import transplant
from training.config import MILD, PRESETS, TrainConfig
from banet.image_io import cover_crop
from training.data import augment
from training.logs import read_csv
from training.schedule import learning_rate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_dataset(pfcn_paths, tmp_path_factory) -> Path:
    """Eight real photos imported into the dataset format."""
    src = tmp_path_factory.mktemp("src")
    (src / "images").mkdir()
    (src / "masks").mkdir()
    for image in pfcn_paths[:8]:
        (src / "images" / image.name).symlink_to(image)
        (src / "masks" / f"{image.stem}.png").symlink_to(image.parents[1] / "masks" / f"{image.stem}.png")
    root = tmp_path_factory.mktemp("tiny") / "ds"
    import_into(Dataset.create(root), read_folders(src / "images", src / "masks"))
    return root


def tiny_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--preset", "ablation-refine", "--out", str(out), "--set", f"train_data={data}",
            "input_size=96", "batch_size=4", "warmup_iterations=4", "val_fraction=0.25", *extra]


def test_presets_follow_the_paper():
    for name, config in PRESETS.items():
        from_trained = config.init_weights is not None  # a third stage on trained weights: a lower max lr
        assert (config.momentum, config.batch_size) == (0.9, 16) and (config.max_lr == 0.1) != from_trained, name
        rotation = MILD["rotation"] if name.endswith("-mild") else 45.0  # the people recipe's late phase departs
        assert (config.rotation, config.flip, config.lightness) == (rotation, 0.5, (0.7, 1.3)), name
        assert config.weight_decay > 0 and config.train_data, name
    assert PRESETS["paper-pretrain"].gamma == 0 and "ccp" in PRESETS["paper-pretrain"].train_data[0]
    assert PRESETS["paper-finetune"].gamma > 0 and "pfcn" in PRESETS["paper-finetune"].train_data[0]
    assert not PRESETS["ablation-base"].boundary_attention and PRESETS["ablation-base"].gamma == 0
    assert PRESETS["ablation-attention"].boundary_attention and PRESETS["ablation-attention"].gamma == 0
    assert PRESETS["ablation-refine"].gamma > 0
    ablations = [PRESETS[f"ablation-{v}"] for v in ("base", "attention", "refine")]
    assert len({(c.iterations, c.input_size, c.train_data) for c in ablations}) == 1


def test_config_overrides_are_typed_and_checked():
    config = TrainConfig().updated({"iterations": "50", "boundary_attention": "false",
                                    "lightness": "0.8,1.2", "train_data": "a,b"})
    assert config.iterations == 50 and config.boundary_attention is False
    assert config.lightness == (0.8, 1.2) and config.train_data == ("a", "b")
    typed = TrainConfig().updated({"source_weights": "0.7,0.3", "jpeg_quality": "20,80"})
    assert typed.source_weights == (0.7, 0.3) and typed.jpeg_quality == (20, 80)  # typed from the field, not its default
    with pytest.raises(ValueError, match="unknown config field"):
        TrainConfig().updated({"iteratons": "5"})
    with pytest.raises(ValueError, match="cannot read"):
        TrainConfig().updated({"iterations": "many"})
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig().assigned(["depths=1,1,6,2", "teacher=a=b"]) == TrainConfig(depths=(1, 1, 6, 2), teacher="a=b")
    with pytest.raises(ValueError, match="expected FIELD=VALUE, got 'iterations'"):
        TrainConfig().assigned(["iterations", "50"])


def test_learning_rate_warms_up_to_max_then_decays_to_zero():
    config = TrainConfig(iterations=1000, warmup_iterations=100, max_lr=0.1, warmup_start_lr=0.001)
    rates = [learning_rate(i, config) for i in range(1000)]
    assert rates[0] == pytest.approx(0.001)
    assert max(rates) == pytest.approx(0.1) and int(np.argmax(rates)) == 100
    assert all(a <= b for a, b in zip(rates[:100], rates[1:101]))
    assert all(a >= b for a, b in zip(rates[100:], rates[101:]))
    assert learning_rate(1000, config) == 0.0


def test_augmentation_moves_image_and_mask_together(pfcn_pairs):
    rgb, mask = (cover_crop(a, (128, 96), cv2.INTER_AREA) for a in pfcn_pairs[0])
    config = TrainConfig(lightness=(1.0, 1.0))
    changed = 0
    for seed in range(20):
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        out_image, out_mask = augment(rgb, mask, config, rng_a)
        as_image, _ = augment(np.repeat(mask[..., None], 3, axis=2), mask, config, rng_b)
        assert np.abs(as_image[..., 0].astype(int) - out_mask.astype(int)).max() <= 1
        assert out_image.shape == rgb.shape and out_mask.shape == mask.shape
        changed += np.mean(np.abs(out_mask.astype(int) - mask)) > 2
    assert changed >= 15  # rotation / flip really transform the pair


def test_lightness_scales_brightness_within_range(pfcn_pairs):
    rgb, mask = (cover_crop(a, (128, 96), cv2.INTER_AREA) for a in pfcn_pairs[1])
    config = TrainConfig(rotation=0.0, flip=0.0)
    base = cv2.cvtColor(rgb, cv2.COLOR_RGB2HLS)[..., 1].mean()
    ratios = []
    for seed in range(30):
        image, out_mask = augment(rgb, mask, config, np.random.default_rng(seed))
        assert (out_mask == mask).all()
        ratios.append(cv2.cvtColor(image, cv2.COLOR_RGB2HLS)[..., 1].mean() / base)
    assert 0.65 < min(ratios) < 0.85 and 1.1 < max(ratios) < 1.35


def test_short_run_learns_and_writes_its_records(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    train.main(tiny_args(tiny_dataset, out, "iterations=40", "log_every=10", "eval_every=20",
                         "checkpoint_every=20", "threads=2"))
    rows = read_csv(out / "metrics.csv")
    losses = [float(r["loss"]) for r in rows if r["loss"]]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    assert [int(r["iteration"]) for r in rows if r["val_iou"]] == [20, 40]
    assert float(rows[-1]["val_iou"]) > 0.5
    assert (out / "curves.png").stat().st_size > 10_000 and (out / "last.pt").is_file()
    model = load_model(out / "model")
    assert model.input_size == 96 and model.boundary_attention
    card = (out / "model" / "README.md").read_text()
    assert "research only" in card and "python -m training.train" in card and str(tiny_dataset) in card
    recorded = json.loads((out / "model" / "training.json").read_text())["config"]["train_data"][0]
    assert not Path(recorded).is_absolute() and Path(recorded).resolve() == tiny_dataset.resolve()

    capsys.readouterr()
    assert evaluate.main(["--weights", str(out / "model"), "--data", str(tiny_dataset), "--limit", "3",
                          "--out", str(tmp_path / "eval")]) == 0
    table = capsys.readouterr().out
    assert "| IoU | mIoU | boundary F | Boundary IoU | grad. align. |" in table
    row = [line for line in table.splitlines() if str(out / "model") in line][0].split("|")
    assert row[2].strip() == "3" and 30 < float(row[4]) <= 100
    assert (tmp_path / "eval" / "table.md").read_text().strip() == table.strip()


def test_a_smaller_shape_learns_from_a_teacher_and_loads_by_its_own_config(tiny_dataset, tmp_path):
    """The architecture fields shape the network; the teacher's confidence softens its target."""
    shape = ("width=32", "depths=1,1,4,1", "mining_channels=4", "fuse_channels=6")
    runs = {}
    for name, teacher in (("alone", ()), ("taught", ("teacher=banet-64", "distill=0.5"))):
        train.main(tiny_args(tiny_dataset, tmp_path / name, "iterations=4", "threads=2", *shape, *teacher))
        runs[name] = load_model(tmp_path / name / "model")
    student = runs["taught"]
    assert (student.encoder.channels, len(student.encoder.stages[2]), student.mining[0][0].out_channels,
            student.fusion.fuse[0].out_channels) == ([32, 32, 32, 32], 4, 4, 6)
    taught, alone = runs["taught"].state_dict(), runs["alone"].state_dict()  # same seed, same batches
    assert any(not torch.equal(taught[k], alone[k]) for k in taught if taught[k].ndim == 4)
    card = (tmp_path / "taught" / "model" / "README.md").read_text()
    assert "Distilled from `banet-64`" in card and "Distilled" not in (tmp_path / "alone" / "model" / "README.md").read_text()


def test_a_smaller_shape_starts_from_the_trained_models_blocks_and_channels(pfcn_pairs):
    """`init_weights` into a cheaper shape: the first blocks come over as they are, and with half
    the mining channels the masks stay close to the trained model's before any training."""
    shipped = load_model("banet-64")
    same = train.build_model(TrainConfig(init_weights="banet-64"))
    assert all(torch.equal(value, same.state_dict()[name]) for name, value in shipped.state_dict().items())
    small = train.build_model(TrainConfig(init_weights="banet-64", depths=(1, 1, 6, 2), mining_channels=4,
                                          fuse_channels=6))
    kept = small.state_dict()
    assert len(small.encoder.stages[2]) == 6 and small.mining[0][0].out_channels == 4
    assert all(torch.equal(value, kept[name]) for name, value in shipped.state_dict().items()
               if name.startswith(("encoder.stages.2.5.", "decoder.", "attention_head.")))
    narrow = train.build_model(TrainConfig(init_weights="banet-64", mining_channels=4, fuse_channels=6))
    fresh = train.new_model(TrainConfig(mining_channels=4, fuse_channels=6))
    photos = [cv2.resize(img, (288, 384), interpolation=cv2.INTER_AREA) for img, _ in pfcn_pairs]
    image = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        masks = [m.eval()(image).logits > 0 for m in (shipped, narrow, fresh)]
    agreement = [float((masks[0] & m).sum() / (masks[0] | m).sum()) for m in masks[1:]]
    assert agreement[0] > 0.95 > agreement[1], agreement


def test_a_shape_the_trained_model_cannot_fill_is_refused():
    for shape in (dict(width=32), dict(depths=(1, 1, 12, 2)), dict(mining_channels=9, fuse_channels=11)):
        with pytest.raises(ValueError, match="trained model"):
            train.build_model(TrainConfig(init_weights="banet-64", **shape))
    with pytest.raises(ValueError, match="widths"):
        transplant(load_model("banet-64"), BANet(expansions=(4, 4, 1, 1)))


def test_a_bundled_starting_model_by_name_passes_on_its_recorded_stages():
    assert recorded_stages("banet-64") == training_record(local_folder("banet-64"))["stages"] != []
    assert recorded_stages("someone/not-local") == []  # a Hub repo id: no record here


def test_the_shapes_benchmark_times_the_shipped_model_beside_a_candidate(capsys):
    shapes.main(["--shape", "width=32 mining_channels=4 fuse_channels=6", "--rounds", "1", "--repeats", "1"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [row[1].strip() for row in rows] == ["shipped banet-64", "width=32 mining_channels=4 fuse_channels=6"]
    (params, flops), (small_params, small_flops) = ((float(r[2]), float(r[3])) for r in rows)
    assert small_params < params / 3 and small_flops < flops / 2 and float(rows[0][5]) == 1.0


def test_a_teachers_confidence_never_turns_a_target_against_its_label():
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0])
    logits = torch.tensor([-9.0, 2.0, 9.0, -2.0])  # the teacher wrong, sure of itself, then right
    target = train.soft_target(mask, logits, 0.5)
    assert torch.all((target >= 0.5) == (mask == 1)) and target[0] < 0.51 and target[1] > 0.9
    assert torch.equal(train.soft_target(mask, logits, 0.0), mask)


def test_killed_run_resumes_to_the_same_weights(tiny_dataset, tmp_path):
    """A run killed mid-way and restarted ends bit-for-bit where an uninterrupted run ends."""
    extra = ("iterations=16", "checkpoint_every=4", "eval_every=8", "log_every=4", "threads=1")
    command = [sys.executable, "-m", "training.train", *tiny_args(tiny_dataset, tmp_path / "killed", *extra)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert torch.load(checkpoint, weights_only=True)["iteration"] < 16
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*command[:6], str(tmp_path / "straight"), *command[7:]], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    resumed = load_file(tmp_path / "killed" / "model" / "model.safetensors")
    straight = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    for name in resumed:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=1e-5, msg=name)
    assert read_csv(tmp_path / "killed" / "metrics.csv")[-1]["iteration"] == "16"


def test_torchrun_two_processes_train_together(tiny_dataset, tmp_path):
    """DistributedDataParallel over two CPU processes (gloo): one run folder, one set of weights."""
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.train",
               *tiny_args(tiny_dataset, out, "iterations=6", "log_every=2", "eval_every=3", "threads=1", "zoom=1.0,1.5")]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(out / "metrics.csv")
    assert [r["iteration"] for r in rows] == ["2", "3", "4", "6"]
    assert load_model(out / "model").input_size == 120  # the 96 canvas at the mean zoom, 1.25


def test_a_dataset_too_small_for_one_batch_is_refused(tiny_dataset, tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.train",
                             *tiny_args(tiny_dataset, tmp_path / "run", "batch_size=16")],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert result.returncode == 1 and "cannot fill a batch of 16" in result.stderr


def test_fine_tuning_with_frozen_batchnorm_keeps_its_statistics(tiny_dataset, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    train.main(tiny_args(tiny_dataset, first, "iterations=2", "threads=2"))
    train.main(tiny_args(tiny_dataset, second, "iterations=4", "threads=2", f"init_weights={first / 'model'}",
                         "freeze_bn=true"))
    before = load_file(first / "model" / "model.safetensors")
    after = load_file(second / "model" / "model.safetensors")
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in before if before[k].ndim == 4]  # convolution kernels
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert any(not torch.equal(before[k], after[k]) for k in weights)  # the convolutions still learn


def test_held_out_samples_come_from_val_and_test_splits_when_there_are_any(tiny_dataset, tmp_path):
    import shutil

    from data_tools.split import assign_splits
    from training.job import split_held_out

    dataset = Dataset.open(tiny_dataset)
    train_samples, held = split_held_out(dataset, 0.25, seed=0)
    assert len(held) == 2 and len(train_samples) == 6 and not {s.id for s in held} & {s.id for s in train_samples}
    assert split_held_out(dataset, 0.25, seed=0)[1] == held  # the same seed holds out the same samples
    copy = tmp_path / "split"
    shutil.copytree(tiny_dataset, copy)
    assign_splits(Dataset.open(copy), val=0.0, test=0.5)
    train_samples, held = split_held_out(Dataset.open(copy), 0.25, seed=0)
    assert len(held) == 4 and all(s.split == "test" for s in held)
