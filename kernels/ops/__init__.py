"""The fused ops as `torch.library` ops, one module per op named after it (Liger's ``ops/`` layout).

Each module holds the op's schema, fake (meta) implementation, autograd, reference and Triton
registrations, and its ``KERNELS`` table (`cloudlulc_edge.kernels.specs`); the Triton kernels live
in the module of the same name under `cloudlulc_edge.kernels.jit`.
"""
