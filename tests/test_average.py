"""training.average: the mean of models fine-tuned from one start, written as a loadable model folder."""
from __future__ import annotations

import pytest
import torch
from skimage import data as skdata

from banet import BANet, Predictor, load_model
from banet.hub import local_folder
from banet.metrics import foreground_iou
from training import average
from training.card import licence_section, training_record


def test_the_mean_of_two_models_is_their_tensors_mean_and_still_finds_the_person(tmp_path):
    average.main(["banet-64", "banet-64-pfcn", "--out", str(tmp_path / "soup")])
    soup, a, b = load_model(tmp_path / "soup"), load_model("banet-64"), load_model("banet-64-pfcn")
    for key in ("encoder.stem.0.weight", "encoder.stem.1.running_var", "attention_head.weight"):
        assert torch.allclose(soup.state_dict()[key], (a.state_dict()[key] + b.state_dict()[key]) / 2)
        assert not torch.equal(soup.state_dict()[key], a.state_dict()[key])
    assert soup.input_size == (a.input_size + b.input_size) // 2  # 384 and 256: works at their mean size
    photo = skdata.astronaut()
    masks = [Predictor(m)(photo).mask for m in (soup, a, b)]
    # measured 0.85 and 0.84 (2026-11-27): the two were trained at different scales, yet their mean
    # still finds the astronaut where each does
    assert foreground_iou(masks[0], masks[1]) > 0.8 and foreground_iou(masks[0], masks[2]) > 0.8


def test_a_model_averaged_with_itself_is_unchanged():
    state = load_model("banet-64").state_dict()
    mean = average.average_weights([state, state])
    assert all(torch.equal(mean[k], state[k]) for k in state)


def test_the_record_lists_the_models_stages_then_the_average(tmp_path):
    average.main(["banet-64", "banet-64-pfcn", "--out", str(tmp_path / "soup")])
    stages = training_record(tmp_path / "soup")["stages"]
    own = training_record(local_folder("banet-64"))["stages"]
    assert stages[:-1] == own  # banet-64-pfcn's two stages are banet-64's first two
    assert stages[-1].startswith("python -m training.average banet-64 banet-64-pfcn")
    card = (tmp_path / "soup" / "README.md").read_text()
    assert "model soup" in card and all(f"- `{stage}`" in card for stage in stages)
    for name in ("banet-64", "banet-64-pfcn"):  # the data's terms carry over from each model's card
        assert licence_section(local_folder(name)) in card


def test_a_stage_two_models_share_is_listed_once_in_the_order_first_recorded():
    start, cont, soup, late = "train start", "train continued", "average start continued", "train late"
    histories = [[start], [start, cont], [start, cont, soup, late]]  # the last continued a soup of the first two
    assert average.soup_stages(histories, "average all") == [start, cont, soup, late, "average all"]


def test_models_of_different_architectures_are_refused(tmp_path):
    BANet(width=32, input_size=256).save_pretrained(tmp_path / "narrow")
    with pytest.raises(SystemExit, match="config.json differ"):
        average.main(["banet-64", str(tmp_path / "narrow"), "--out", str(tmp_path / "soup")])
    assert not (tmp_path / "soup").exists()


def test_a_folder_without_a_config_is_named_not_a_stack_trace(tmp_path):
    BANet(input_size=256).save_pretrained(tmp_path / "bare")
    (tmp_path / "bare" / "config.json").unlink()
    with pytest.raises(SystemExit, match="bare: no config.json"):
        average.main(["banet-64", str(tmp_path / "bare"), "--out", str(tmp_path / "soup")])
    assert not (tmp_path / "soup").exists()


def test_the_record_holds_each_models_record_and_implies_the_soups_working_size(tmp_path):
    average.main(["banet-64", "banet-64-pfcn", "--out", str(tmp_path / "soup")])
    record = training_record(tmp_path / "soup")
    assert record["ingredients"] == [training_record(local_folder(m)) for m in ("banet-64", "banet-64-pfcn")]
    assert average.recorded_input_size(record) == load_model(tmp_path / "soup").input_size == 320  # 384 and 256
