"""Benchmark harness of cloudlulc-edge (import name ``cloudlulc_edge.bench``).

* ``python -m cloudlulc_edge.bench.model_cost``: parameters, GFLOPs and peak inference memory of
  every registered variant per 512×512 tile; writes JSON/Markdown and can refresh the table in docs/models.md.
"""

from __future__ import annotations

__all__: list[str] = []
