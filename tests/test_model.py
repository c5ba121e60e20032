"""Architecture: parameter counts, shapes at odd sizes, ablation switch, gradient flow."""
import pytest
import torch

from banet import BANet, BANetLoss, count_parameters, load_model
from banet.blocks import weighted_pointwise

from .helpers import make_batch


def test_banet64_parameter_count_matches_paper():
    assert 0.55e6 <= count_parameters(BANet(width=64)) <= 0.70e6


def test_banet512_parameter_count_matches_paper():
    assert count_parameters(BANet(width=512)) == pytest.approx(12.75e6, rel=0.15)


def test_a_fusion_without_room_for_both_branches_is_refused():
    for mining, fuse in ((8, 8), (8, 6), (0, 4)):
        with pytest.raises(ValueError, match="must exceed mining_channels"):
            BANet(mining_channels=mining, fuse_channels=fuse)
    assert BANet(mining_channels=4, fuse_channels=6).semantic_proj[0].out_channels == 2


def test_channel_weights_folded_into_the_classifier_equal_weighting_first():
    """The shipped classifier on fused features weighted per channel, as BiSeNet writes it."""
    classifier = load_model().classifier
    torch.manual_seed(0)
    features = torch.rand(2, classifier.in_channels, 64, 48)
    weights = 1 + torch.rand(2, classifier.in_channels, 1, 1)
    with torch.no_grad():
        folded = weighted_pointwise(classifier, features, weights)
        assert torch.allclose(folded, classifier(features * weights), atol=1e-5)
        assert not torch.allclose(folded, classifier(features * weights.flip(0)), atol=1e-3)


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 100, 67), (1, 3, 31, 257), (1, 3, 64, 64)])
def test_any_input_size_gives_full_resolution_outputs(shape):
    model = BANet().eval()
    with torch.inference_mode():
        out = model(torch.rand(shape))
    assert out.logits.shape == (shape[0], 1, *shape[2:])
    assert out.attention_logits.shape == (shape[0], 1, *shape[2:])
    assert torch.isfinite(out.logits).all()


def test_base_model_has_no_attention_and_mines_the_plain_image():
    base, full = BANet(boundary_attention=False).eval(), BANet().eval()
    assert base.mining[0][0].in_channels == 3 and full.mining[0][0].in_channels == 4
    with torch.inference_mode():
        out = base(torch.rand(1, 3, 64, 96))
    assert out.attention_logits is None and out.logits.shape == (1, 1, 64, 96)
    assert count_parameters(base) < count_parameters(full)


def test_padding_is_cropped_back_not_leaked():
    """A 33x33 input pads to 64x64; the crop must equal the top-left of the padded run."""
    model = BANet().eval()
    x = torch.rand(1, 3, 33, 33)
    padded = torch.nn.functional.pad(x, (0, 31, 0, 31), mode="replicate")
    with torch.inference_mode():
        assert torch.allclose(model(x).logits, model(padded).logits[..., :33, :33], atol=1e-5)


def test_gradients_reach_every_parameter_on_real_photos(pfcn_pairs):
    torch.manual_seed(0)
    model = BANet().train()
    image, mask, band = make_batch(pfcn_pairs[:4], (128, 96))
    BANetLoss()(model(image), image, mask, band).total.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_short_fit_on_real_photos_learns(fitted_model, pfcn_pairs):
    """40 steps on 8 photos must beat the all-person guess on those photos (sanity of the loss)."""
    from banet.metrics import foreground_iou

    image, mask, _ = make_batch(pfcn_pairs, (160, 128))
    with torch.inference_mode():
        pred = torch.sigmoid(fitted_model(image).logits) > 0.5
    ious = [foreground_iou(p[0].numpy(), m[0].numpy() > 0.5) for p, m in zip(pred, mask)]
    everything = [foreground_iou(torch.ones_like(m[0]).numpy() > 0, m[0].numpy() > 0.5) for m in mask]
    assert sum(ious) / len(ious) > sum(everything) / len(everything) + 0.1
