"""cloudlulc-edge: LULC maps through clouds from Sentinel-1 + Sentinel-2 with CloudLULC-Net.

The network is a reconstruction of CloudLULC-Net (arXiv 2606.17713) from its published
description; the official code and weights are unreleased.
"""

from __future__ import annotations

from cloudlulc_edge.version import __version__

__all__ = ["__version__"]
