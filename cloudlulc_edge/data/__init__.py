"""Training data: the CloudLULC-Set reader and paired augmentation (cloud simulation comes with issue 9).

Import name ``cloudlulc_edge.data``.
"""

from __future__ import annotations

from cloudlulc_edge.data.augment import Augment
from cloudlulc_edge.data.cloudlulc_set import CLOUD_BINS, LABEL_SCHEMES, CloudLULCSet, DatasetError, Sample, cloud_bin

__all__ = ["CLOUD_BINS", "LABEL_SCHEMES", "Augment", "CloudLULCSet", "DatasetError", "Sample", "cloud_bin"]
