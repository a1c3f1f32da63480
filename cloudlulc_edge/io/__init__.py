"""Scene input: product identification and readers for S2 SAFE, S1 GRD SAFE and GeoTIFF scenes.

Every reader delivers rows of the scene's output grid; `scene.SceneReader` combines a pair's
readers into normalised `grid.Strip` objects for the tiler.
"""

import os

# GDAL's block cache defaults to 5 % of RAM (1.2 GB on a 24 GB station), which alone would
# break the bounded-memory promise of streaming. Operators can still override it.
os.environ.setdefault("GDAL_CACHEMAX", "256")
