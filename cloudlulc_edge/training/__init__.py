"""Training and evaluation: configuration, the loop with exact resume, and metrics.

Import name ``cloudlulc_edge.training``.
"""

from __future__ import annotations

from cloudlulc_edge.training.config import ConfigError, TrainConfig, load_config
from cloudlulc_edge.training.loop import TrainResult, train
from cloudlulc_edge.training.metrics import ConfusionMatrix, StratifiedMetrics, segmentation_metrics

__all__ = [
    "ConfigError",
    "ConfusionMatrix",
    "StratifiedMetrics",
    "TrainConfig",
    "TrainResult",
    "load_config",
    "segmentation_metrics",
    "train",
]
