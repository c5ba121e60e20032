"""Weights I/O: exact round trip, bundled default, offline Hub fallback, no unpickling."""
import copy
import json
import logging

import pytest
import torch
from huggingface_hub import constants

from banet import DEFAULT_MODEL, BANet, WeightsError, bundled_models, load_model
from banet.hub import local_folder
from training.average import recorded_input_size
from training.card import training_record


def _same(a: BANet, b: BANet) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_load_round_trip_is_exact(fitted_model, tmp_path):
    fitted_model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"model.safetensors", "config.json", "README.md"}
    loaded = load_model(tmp_path / "ckpt")
    _same(fitted_model, loaded)
    # same memory layout on both sides (a Predictor may have made the fixture channels-last)
    original = copy.deepcopy(fitted_model).to(memory_format=torch.contiguous_format)
    x = torch.rand(1, 3, 96, 64)
    with torch.inference_mode():
        assert torch.equal(original(x).logits, loaded(x).logits)
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["input_size"] == 160


def test_config_round_trips_non_default_architectures(tmp_path):
    model = BANet(width=32, depths=(1, 1, 2, 1), boundary_attention=False, temperature=3.0)
    model.save_pretrained(tmp_path / "small")
    loaded = BANet.from_pretrained(tmp_path / "small")
    assert loaded.attention_head is None and loaded.temperature == 3.0
    _same(model, loaded)


def test_saving_over_an_existing_checkpoint_replaces_it_whole(fitted_model, tmp_path):
    BANet().save_pretrained(tmp_path / "ckpt")
    fitted_model.save_pretrained(tmp_path / "ckpt")
    _same(fitted_model, load_model(tmp_path / "ckpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no staging leftovers


def test_bundled_default_loads_without_network():
    assert DEFAULT_MODEL in bundled_models()
    model = load_model()
    assert isinstance(model, BANet) and not model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_model_loaded_onto_a_gpu_runs_there():
    """The normalisation buffers built in __init__ move with the weights (a distillation teacher on CUDA)."""
    model = load_model(DEFAULT_MODEL, device="cuda")
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"cuda"}
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 48, device="cuda")).logits.is_cuda


def test_bundled_models_run_at_the_scale_they_were_trained_at():
    """Each bundled config's input_size is the rule applied to the training record beside it (a
    soup's: the mean of its models' sizes, each from its own training config)."""
    for name in bundled_models():
        record = training_record(local_folder(name))
        assert load_model(name).input_size == recorded_input_size(record), name


def test_pickled_and_corrupt_weights_are_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save(BANet().state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="pickled weights are never loaded"):
        load_model(folder)
    with pytest.raises(WeightsError, match="never loaded"):
        load_model(folder / "pytorch_model.bin")
    BANet().save_pretrained(tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        load_model(tmp_path / "corrupt")
    BANet(width=32).save_pretrained(tmp_path / "mismatch")
    config = json.loads((tmp_path / "mismatch" / "config.json").read_text())
    (tmp_path / "mismatch" / "config.json").write_text(json.dumps({**config, "width": 64}))
    with pytest.raises(WeightsError, match="do not match"):
        load_model(tmp_path / "mismatch")


def _fake_hub_cache(cache, repo_id: str, model: BANet) -> None:
    """The layout huggingface_hub's cache uses: models--owner--name/{refs/main, snapshots/<sha>/...}."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    model.save_pretrained(repo / "snapshots" / commit)


def test_offline_hub_id_uses_the_local_cache(fitted_model, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _fake_hub_cache(tmp_path, "someone/banet-portrait", fitted_model)
    _same(fitted_model, load_model("someone/banet-portrait", cache_dir=tmp_path))


def test_offline_uncached_hub_id_falls_back_to_bundled_weights(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level(logging.WARNING, logger="banet.hub"):
        model = load_model("someone/not-cached", cache_dir=tmp_path)
    _same(model, load_model(DEFAULT_MODEL))
    assert "neither reachable nor cached" in caplog.text


def test_unknown_names_are_clear_errors():
    with pytest.raises(WeightsError, match="not a bundled model"):
        load_model("no-such-model")
