"""Learning rate: linear warm-up to max_lr, then poly decay to zero."""
from __future__ import annotations

from .config import TrainConfig


def learning_rate(iteration: int, config: TrainConfig) -> float:
    if iteration < config.warmup_iterations:
        t = iteration / max(1, config.warmup_iterations)
        return config.warmup_start_lr + t * (config.max_lr - config.warmup_start_lr)
    span = max(1, config.iterations - config.warmup_iterations)
    progress = min(1.0, (iteration - config.warmup_iterations) / span)
    return config.max_lr * (1.0 - progress) ** config.lr_power
