"""The peers benchmark maps one synthetic scene with the product and the naive script, in fresh processes."""

from __future__ import annotations

import pytest

from cloudlulc_edge.bench.scene_peers import plot, render, run_peers


def test_peers_map_the_same_scene_and_agree(tmp_path):
    result = run_peers(tmp_path, [600])
    rows = {r["route"]: r for r in result["rows"]}
    assert set(rows) == {"ours", "naive"}
    for row in rows.values():
        assert row["wall_s"] > 0 and row["peak_rss_mib"] > 0 and row["size"] == 600
    assert rows["ours"]["time_vs_ours"] == 1.0 and rows["naive"]["time_vs_ours"] == pytest.approx(
        rows["naive"]["wall_s"] / rows["ours"]["wall_s"], rel=0.02
    )
    # Same weights, tiles and stride: the maps differ only at resampling and blending edges.
    assert rows["naive"]["agreement_pct"] >= 95.0
    assert "| 600² | naive |" in render(result)
    pytest.importorskip("matplotlib", reason="PNG plots need the 'bench' extra")
    assert plot(result, tmp_path / "peers.png").read_bytes().startswith(b"\x89PNG")
