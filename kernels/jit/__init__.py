"""Triton kernels and their launchers, one module per fused op, named after the op.

Every module here imports ``triton`` at import time, so nothing outside `cloudlulc_edge.kernels`
imports them directly: the op modules of the same name (`ops.reliability_gate`, `ops.norm_gate`,
`ops.channel_softmax_gate`) load them lazily through `dispatch.register_triton` on the first call that
needs them. Kernels are ``<op>_fwd_kernel`` and ``<op>_bwd_kernel``.

Layout contract shared by all kernels: tensors are (B, C, H, W) and contiguous; one program owns
a ``[BLOCK_C, BLOCK_P]`` tile with *all* channels (``BLOCK_C = next_pow2(C)``, padded lanes masked)
and ``BLOCK_P`` consecutive pixels of one image, so per-pixel channel reductions (LayerNorm
statistics, channel means) never leave registers. The grid is ``(max(1, cdiv(H·W, BLOCK_P)), B)`` (`_common.plan_launch`).
"""
