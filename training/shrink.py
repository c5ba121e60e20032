"""Start a cheaper BANet shape from a trained model's weights instead of from scratch.

The smaller shape (`TrainConfig` fields `depths`, `mining_channels`, `fuse_channels`) keeps the
trained model's stem, decoder and attention head as they are, the first blocks of each encoder
stage, and the mining and fusion channels the next layer reads the most; training
(best with the trained model as `teacher`) then recovers what the rest did.

Example:
    >>> small = BANet(depths=(1, 1, 6, 2), mining_channels=4, fuse_channels=6)
    >>> transplant(load_model("banet-64"), small)
"""
from __future__ import annotations

import torch
from torch import nn

from banet import BANet


def transplant(source: BANet, target: BANet) -> None:
    """Load `source`'s weights into `target`, a shape with at most as many blocks per stage and
    mining, semantic and fusion channels, and the same widths; the same shape copies everything.

    Raises ValueError naming what differs when `target` is not such a shape.
    """
    _check_shapes(source, target)
    src = source.state_dict()
    state = {}
    for name, value in src.items():  # stem, decoder, attention head: the same shapes
        if not name.startswith(("encoder.stages.", "semantic_proj.", "mining.", "fusion.", "classifier.")):
            state[name] = value
    for s, (old, new) in enumerate(zip(source.encoder.stages, target.encoder.stages)):
        for b, kept in enumerate(kept_blocks(old, len(new))):
            state.update(_renamed(src, f"encoder.stages.{s}.{kept}.", f"encoder.stages.{s}.{b}."))
    state.update(_head_state(source, target))
    target.load_state_dict(state)


def kept_blocks(stage: nn.Sequential, depth: int) -> list[int]:
    """The first `depth` blocks: each later block refines what the ones before it computed. The paper
    trains one shape only; this rule is our choice (60 PFCN training photos, before any training, into
    `depths=1,1,6,2 mining_channels=4 fuse_channels=6`: keeping the first six of stage 3's ten left
    IoU 90.0, six spread evenly 83.5, the six whose residual branch is scaled up most 26.2)."""
    return list(range(min(depth, len(stage))))


def _check_shapes(source: BANet, target: BANet) -> None:
    if _widths(source) != _widths(target) or (source.attention_head is None) != (target.attention_head is None):
        raise ValueError("the smaller shape must have the trained model's widths and boundary attention "
                         f"(stage and bottleneck widths {_widths(source)} against {_widths(target)})")
    for s, (old, new) in enumerate(zip(source.encoder.stages, target.encoder.stages)):
        if len(new) > len(old):
            raise ValueError(f"stage {s + 1} has {len(new)} blocks, more than the trained model's {len(old)}")
    mining = (_mining_width(source), _mining_width(target))
    semantic = (_semantic_width(source), _semantic_width(target))
    if mining[1] > mining[0] or semantic[1] > semantic[0]:
        raise ValueError(f"mining channels {mining[1]} and semantic channels {semantic[1]} must be at most the "
                         f"trained model's {mining[0]} and {semantic[0]}")


def _widths(model: BANet) -> list[int]:
    """Each encoder stage's width and its bottlenecks' inner width: what the kept blocks must match."""
    return [*model.encoder.channels, *(stage[0].body[1][0].out_channels for stage in model.encoder.stages)]


def _renamed(state: dict[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {new + name[len(old):]: value for name, value in state.items() if name.startswith(old)}


def _mining_width(model: BANet) -> int:
    return model.mining[-1][0].out_channels


def _semantic_width(model: BANet) -> int:
    return model.semantic_proj[0].out_channels


def _head_state(source: BANet, target: BANet) -> dict[str, torch.Tensor]:
    """Mining, semantic projection, fusion and classifier with the channels each next layer reads most."""
    fuse = source.fusion.fuse[0].weight.detach()  # (out, mining + semantic, 1, 1)
    m_old = _mining_width(source)
    mining_out = _most_read(fuse[:, :m_old], source.mining[1][1], _mining_width(target))
    semantic = _most_read(fuse[:, m_old:], source.semantic_proj[1], _semantic_width(target))
    mining_mid = _most_read(source.mining[1][0].weight.detach()[mining_out], source.mining[0][1],
                            target.mining[0][0].out_channels)
    fused = _most_read(source.classifier.weight.detach(), source.fusion.fuse[1], target.fusion.fuse[0].out_channels)
    hidden = _most_read(source.fusion.attention[3].weight.detach()[fused], None,
                        target.fusion.attention[1].out_channels)
    every = slice(None)
    state = {}
    state.update(_conv_bn(source.semantic_proj, "semantic_proj", semantic, every))
    state.update(_conv_bn(source.mining[0], "mining.0", mining_mid, every))
    state.update(_conv_bn(source.mining[1], "mining.1", mining_out, mining_mid))
    state.update(_conv_bn(source.fusion.fuse, "fusion.fuse", fused, torch.cat([mining_out, m_old + semantic])))
    first, second = source.fusion.attention[1], source.fusion.attention[3]
    state["fusion.attention.1.weight"] = first.weight.detach()[hidden][:, fused]
    state["fusion.attention.1.bias"] = first.bias.detach()[hidden]
    state["fusion.attention.3.weight"] = second.weight.detach()[fused][:, hidden]
    state["fusion.attention.3.bias"] = second.bias.detach()[fused]
    state["classifier.weight"] = source.classifier.weight.detach()[:, fused]
    state["classifier.bias"] = source.classifier.bias.detach()
    return state


def _most_read(reader: torch.Tensor, norm: nn.BatchNorm2d | None, keep: int) -> torch.Tensor:
    """Indices (ascending) of the `keep` input channels of `reader` (a conv weight, out x in x k x k)
    with the largest L1 weight, times the channel's BatchNorm scale and shift (its output's size)."""
    score = reader.abs().sum(dim=(0, 2, 3))
    if norm is not None:
        score = score * (norm.weight.detach().abs() + norm.bias.detach().abs())
    return score.topk(keep).indices.sort().values


def _conv_bn(block: nn.Sequential, prefix: str, out: torch.Tensor, inputs: torch.Tensor | slice) -> dict[str, torch.Tensor]:
    """A ConvBNReLU's weights restricted to output channels `out` and input channels `inputs`."""
    conv, norm = block[0], block[1]
    state = {f"{prefix}.0.weight": conv.weight.detach()[out][:, inputs]}
    for name in ("weight", "bias", "running_mean", "running_var"):
        state[f"{prefix}.1.{name}"] = getattr(norm, name).detach()[out]
    state[f"{prefix}.1.num_batches_tracked"] = norm.num_batches_tracked
    return state
