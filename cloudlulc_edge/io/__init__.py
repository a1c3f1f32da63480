"""Scene input: product identification and readers for S2 SAFE, S1 GRD SAFE and GeoTIFF scenes.

Every reader delivers rows of the scene's output grid; `scene.SceneReader` combines a pair's
readers into normalised `grid.Strip` objects for the tiler. Importing this package configures
nothing: GDAL's settings for a run are applied at the run entry point
(`cloudlulc_edge.pipeline.gdal_options`).
"""
