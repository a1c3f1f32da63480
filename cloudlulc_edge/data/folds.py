"""Cross-validation folds over the BigEarthNet patches, keeping each spatial group in one fold.

A random split of 52 patches would put neighbouring patches of one Sentinel-2 tile on both
sides and reward memorising the tile. `assign_folds` keeps every `patch_group` (the MGRS tile, or
the S2 datatake where the tile is unknown) inside one fold: groups are dealt largest first to the
fold with the fewest patches so far (ties: the lower fold index, then the group name), which is
deterministic and needs no random seed. With the shared data this puts the 21 patches of tile
33UUP in one fold and spreads the other 31 over the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from cloudlulc_edge.data.bigearthnet import PatchFiles, patch_group

__all__ = ["assign_folds", "fold_names"]


def assign_folds(patches: Sequence[PatchFiles], folds: int) -> dict[str, int]:
    """Patch name → fold index in ``0..folds−1``; a spatial group never spans two folds.

    Raises:
        ValueError: Fewer than two folds, or fewer groups than folds.
    """
    groups = {p.name: patch_group(p) for p in patches}
    sizes = Counter(groups.values())
    if folds < 2 or len(sizes) < folds:
        raise ValueError(f"need 2 ≤ folds ≤ {len(sizes)} spatial groups, got {folds}")
    load = [0] * folds
    fold_of_group: dict[str, int] = {}
    for group, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        target = min(range(folds), key=lambda f: (load[f], f))
        fold_of_group[group] = target
        load[target] += size
    return {name: fold_of_group[group] for name, group in groups.items()}


def fold_names(patches: Sequence[PatchFiles], folds: int, fold: int, held_out: bool) -> list[str]:
    """Names of the patches in fold ``fold`` (``held_out``) or outside it (training), in index order."""
    assignment = assign_folds(patches, folds)
    return [p.name for p in patches if (assignment[p.name] == fold) == held_out]
