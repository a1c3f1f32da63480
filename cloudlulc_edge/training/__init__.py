"""Training and evaluation (metrics now; the loop, configuration and reports arrive with the training issue).

Import name ``cloudlulc_edge.training``.
"""

from __future__ import annotations

from cloudlulc_edge.training.metrics import ConfusionMatrix, StratifiedMetrics, segmentation_metrics

__all__ = ["ConfusionMatrix", "StratifiedMetrics", "segmentation_metrics"]
