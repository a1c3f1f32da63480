"""Export of CloudLULC-Net: ONNX (standard / plugin), FP16/INT8 graphs, TensorRT engines.

Import name ``cloudlulc_edge.export``. Modules, in data-flow order:

* `torch_export`: ``torch.export`` programs (static tile, dynamic batch).
* `onnx_export`: ONNX files, flavours ``standard`` and ``plugin`` (`plugin_ops`).
* `calibration`: INT8 calibration tiles from real scenes through the inference readers.
* `precision`: FP16 (ModelOpt AutoCast) and INT8 (ModelOpt ONNX PTQ, explicit Q/DQ).
* `plugin_ptx`: ahead-of-time Triton PTX of the plugin nodes per GPU target.
* `bundle`: one export directory with every artifact and a manifest.
* On the target (``tensorrt`` extra): `profiles`, `engine_key`, `trt_plugins`,
  `engine_builder`, and `trtexec` command lines.

onnx, onnxruntime, ModelOpt and TensorRT are imported where used, so this package imports without
the ``export`` and ``tensorrt`` extras.
"""

from __future__ import annotations

from cloudlulc_edge.export.onnx_export import INPUT_NAMES, OUTPUT_NAMES, export_onnx, input_shapes
from cloudlulc_edge.export.torch_export import ExportInputs, example_inputs, export_program

__all__ = [
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "ExportInputs",
    "example_inputs",
    "export_onnx",
    "export_program",
    "input_shapes",
]
