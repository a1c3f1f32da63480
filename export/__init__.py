"""Export of CloudLULC-Net: ``torch.export`` programs (ONNX and TensorRT build on them).

Import name ``cloudlulc_edge.export``.
"""

from __future__ import annotations

from cloudlulc_edge.export.torch_export import ExportInputs, example_inputs, export_program

__all__ = ["ExportInputs", "example_inputs", "export_program"]
