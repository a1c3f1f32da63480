"""Pairing each Sentinel-2 scene with its Sentinel-1 acquisition, and the plan file.

Rule (`sentinel.md` §9): for every S2 product, the S1 candidates are those whose footprint
overlaps the S2 footprint and whose sensing time lies within ``±window_days``. Candidates are
grouped by acquisition (consecutive GRD slices of one datatake), a group's footprints are
unioned (a tile can straddle two slices, which are then mosaicked), and the group with minimum
|Δt| wins, ties broken by larger coverage. Coverage is the share of the S2 data footprint the
group covers, computed in the S2 product's projected CRS.

The plan (`write_plan` / `read_plan`) is the unit of work for batch runs and sharding: a JSON file
listing each pair with its S2 and S1 products, Δt and coverage. `plan_directory` scans a folder
and pairs what it finds: what ``plan`` and ``map`` do first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rasterio.warp import transform_geom
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from cloudlulc_edge.errors import PairingError
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.products import Product, Skipped, scan
from cloudlulc_edge.io.s1_terrain import TerrainCorrection
from cloudlulc_edge.version import __version__

__all__ = [
    "PLAN_FORMAT_VERSION",
    "Pair",
    "Plan",
    "check_plan_roots",
    "pair_products",
    "plan_directory",
    "plan_file_digest",
    "plan_to_file",
    "read_plan",
    "recorded_input_root",
    "write_plan",
]

PLAN_FORMAT_VERSION = 1
#: Minimum share of the S2 footprint an S1 product must cover to count as overlapping (%).
MIN_OVERLAP_PCT = 0.01


@dataclass(frozen=True)
class Pair:
    """One unit of work: an S2 product and the S1 product(s) mosaicked under it.

    Attributes:
        s2: The optical product.
        s1: The SAR products (one acquisition, possibly several slices); empty when none matched.
        dt_days: Signed S1 − S2 time difference in days (None without S1).
        s1_coverage_pct: Share of the S2 footprint covered by the S1 products (0 without S1).
    """

    s2: Product
    s1: tuple[Product, ...]
    dt_days: float | None
    s1_coverage_pct: float

    @property
    def name(self) -> str:
        """Output name stem of the pair's map."""
        return self.s2.product_id

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"name": self.name, "s2": self.s2.to_dict(), "s1": [p.to_dict() for p in self.s1],
                "dt_days": self.dt_days, "s1_coverage_pct": self.s1_coverage_pct}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pair:
        """Inverse of `to_dict`."""
        return cls(Product.from_dict(data["s2"]), tuple(Product.from_dict(p) for p in data["s1"]),
                   data["dt_days"], float(data["s1_coverage_pct"]))  # fmt: skip


@dataclass
class Plan:
    """Pairs to map, and what was left out while planning.

    Attributes:
        pairs: Units of work.
        skipped: Inputs that are not products, or S2 products left out (for example without S1
            when S1 is required).
        options: Pairing options used.
    """

    pairs: list[Pair] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """SHA-256 of what the plan maps (its pairs and options, canonical JSON), 16 hex digits.

        The same for a plan and the file it was written to; job files pin it (``run --plan-digest``)
        so that shards of one job never map different versions of a plan.
        """
        content = {"options": self.options, "pairs": [p.to_dict() for p in self.pairs]}
        text = json.dumps(json.loads(json.dumps(content)), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def shard(self, index: int, count: int) -> list[Pair]:
        """Pairs of shard ``index`` of ``count`` (round-robin, stable)."""
        if not 0 <= index < count:
            raise PairingError(f"shard index {index} is not in 0..{count - 1}")
        return self.pairs[index::count]


def _projected(geom: dict[str, Any], crs: str) -> BaseGeometry:
    return shape(transform_geom("EPSG:4326", crs, geom)).buffer(0)


def pair_products(products: Sequence[Product], window_days: float = 6.0, require_s1: bool = False) -> Plan:
    """Pairs every S2 product with the best S1 acquisition.

    Args:
        products: Products from `io.products.scan`.
        window_days: Maximum |Δt| between S2 and S1 sensing, days.
        require_s1: Leave S2 products without S1 out of the plan (as skips) instead of planning
            them for the model's S1-missing path.

    Returns:
        The plan.
    """
    plan = Plan(options={"window_days": window_days, "require_s1": require_s1})
    s2s = _one_per_name([p for p in products if p.modality == "s2"], plan.skipped)
    s1s = [p for p in products if p.modality == "s1"]
    for s2 in s2s:
        crs = s2.attrs.get("crs", "EPSG:4326")
        s2_geom = _projected(s2.footprint, crs)
        groups: dict[str, list[Product]] = defaultdict(list)
        for s1 in s1s:
            dt = abs((s1.time - s2.time).total_seconds()) / 86400.0
            if dt > window_days:
                continue
            inter = s2_geom.intersection(_projected(s1.footprint, crs)).area
            if s2_geom.area > 0 and 100.0 * inter / s2_geom.area >= MIN_OVERLAP_PCT:
                groups[s1.acquisition_key].append(s1)
        best: tuple[float, float, list[Product]] | None = None
        for members in groups.values():
            union = unary_union([_projected(m.footprint, crs) for m in members])
            coverage = 100.0 * s2_geom.intersection(union).area / s2_geom.area
            dt = min(abs((m.time - s2.time).total_seconds()) for m in members) / 86400.0
            if best is None or (dt, -coverage) < (best[0], -best[1]):
                best = (dt, coverage, sorted(members, key=lambda m: m.sensing_time))
        if best is None:
            if require_s1:
                plan.skipped.append(Skipped(s2.path, f"no S1 product overlaps it within ±{window_days:g} days"))
                continue
            plan.pairs.append(Pair(s2, (), None, 0.0))
            continue
        signed = (best[2][0].time - s2.time).total_seconds() / 86400.0
        plan.pairs.append(Pair(s2, tuple(best[2]), round(signed, 4), round(min(best[1], 100.0), 3)))
    return plan


def _one_per_name(s2s: list[Product], skipped: list[Skipped]) -> list[Product]:
    """The S2 products with distinct ids; the others join ``skipped`` naming the one kept.

    The id names the map file, so two products with one id would write (or resume from) one map.
    The first by path is kept: two copies of one SAFE product (a folder and its zip) are the same
    data; two different GeoTIFF scenes that share a name must be renamed to be mapped.
    """
    kept: dict[str, Product] = {}
    for s2 in sorted(s2s, key=lambda p: p.path):
        first = kept.setdefault(s2.product_id, s2)
        if first is not s2:
            skipped.append(Skipped(s2.path, f"another S2 product has the same id {s2.product_id!r} ({first.path}); the "
                                   "id names the map file, so only that one is mapped — remove this copy or "
                                   "rename the scene"))  # fmt: skip
    return [p for p in s2s if kept[p.product_id] is p]


def plan_directory(input_dir: str | Path, window_days: float = 6.0, require_s1: bool = False,
                   terrain: TerrainCorrection | None = None) -> Plan:  # fmt: skip
    """Scans a directory and pairs its products; paths that are not products join the plan's skips.

    The plan records the folder it was made from (``input_root``): `read_plan` maps only products
    under it unless told other roots. It also records the S1 terrain correction to map with
    (``terrain``), which ``run`` applies.

    Raises:
        CloudLULCError: ``input_dir`` is not a directory.
    """
    found = scan(input_dir)
    plan = pair_products(found.products, window_days=window_days, require_s1=require_s1)
    plan.skipped = [*found.skipped, *plan.skipped]
    plan.options["input_root"] = os.path.abspath(input_dir)
    if terrain is not None:
        plan.options["terrain"] = terrain.to_dict()
    return plan


def plan_to_file(input_dir: str | Path, plan_file: str | Path, window_days: float = 6.0,
                 require_s1: bool = False, terrain: TerrainCorrection | None = None) -> Plan:  # fmt: skip
    """`plan_directory`, then `write_plan` to ``plan_file``: what ``cloudlulc-edge plan`` does.

    Raises:
        CloudLULCError: ``input_dir`` is not a directory.
    """
    plan = plan_directory(input_dir, window_days, require_s1, terrain)
    write_plan(plan, plan_file)
    return plan


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Writes a plan as JSON (atomically: temporary name, then rename).

    Returns:
        The written path.
    """
    path = Path(path)
    doc = {
        "format_version": PLAN_FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "software": f"cloudlulc-edge {__version__}",
        "digest": plan.digest,
        "options": plan.options,
        "pairs": [p.to_dict() for p in plan.pairs],
        "skipped": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
    }
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2)))


def check_plan_roots(plan: Plan, roots: Sequence[str | Path], source: Path | None = None) -> None:
    """Refuses a plan naming any product outside ``roots`` (paths made absolute, ``..`` collapsed).

    A plan file is input like any other: one edited (or written elsewhere) must not make a mapping
    job read arbitrary files on the machine. Symbolic links inside a root are followed as the
    operator placed them (an input folder of links to products is a common layout).

    Raises:
        PairingError: No roots, or a product path outside all of them (naming it).
    """
    resolved = [Path(os.path.abspath(r)) for r in roots]
    if not resolved:
        raise PairingError("no input root given; pass the allowed input folder(s)", source)
    for pair in plan.pairs:
        for product in (pair.s2, *pair.s1):
            path = Path(os.path.abspath(product.path))
            if not any(path == root or root in path.parents for root in resolved):
                raise PairingError(f"plan entry {product.path} lies outside the allowed input root(s) "
                                   f"{', '.join(map(str, resolved))}; refused", source)  # fmt: skip


def _plan_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PairingError(f"not a readable plan ({type(exc).__name__}: {exc})", path) from exc
    if not isinstance(doc, dict):
        raise PairingError(f"not a plan (a JSON {type(doc).__name__}, not an object)", path)
    return doc


def plan_file_digest(path: Path) -> str:
    """The `Plan.digest` of a plan file, without checking its roots (for pinning it in job files).

    Raises:
        PairingError: The file is not a plan.
    """
    doc = _plan_doc(path)
    try:
        plan = Plan([Pair.from_dict(p) for p in doc["pairs"]], [], dict(doc.get("options", {})))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise PairingError(f"not a readable plan ({type(exc).__name__}: {exc})", path) from exc
    return plan.digest


def recorded_input_root(path: Path) -> str | None:
    """The input folder a plan file says it was made from (``plan`` records it): a hint, never trusted.

    `run` reads only inside the ``--input-root`` folders of its own command line; ``deploy`` writes
    this folder into the job files it generates, where the operator sees it.

    Raises:
        PairingError: The file is not a plan.
    """
    options = _plan_doc(path).get("options", {})
    root = options.get("input_root") if isinstance(options, dict) else None
    return root if isinstance(root, str) and root else None


def read_plan(path: str | Path, roots: Sequence[str | Path]) -> Plan:
    """Reads a plan written by `write_plan`, and checks its products lie inside the input roots.

    Args:
        path: The plan file.
        roots: Allowed input folders, from the caller's own command line: never from the plan,
            which is input like any other (`recorded_input_root` is only a hint).

    Raises:
        PairingError: The file is missing, not JSON, not a plan of a known version, malformed, or
            names a product outside the allowed roots.
    """
    path = Path(path)
    doc = _plan_doc(path)
    if doc.get("format_version") != PLAN_FORMAT_VERSION:
        raise PairingError(f"not a plan file of format version {PLAN_FORMAT_VERSION}", path)
    try:
        pairs = [_checked_pair(Pair.from_dict(p)) for p in doc["pairs"]]
        skipped = [Skipped(str(s["path"]), str(s["reason"])) for s in doc.get("skipped", [])]
        options = doc.get("options", {})
        if not isinstance(options, dict):
            raise TypeError(f"options must be an object, got {type(options).__name__}")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise PairingError(f"malformed plan entry ({exc!r})", path) from exc
    plan = Plan(pairs, skipped, dict(options))
    twice = sorted(name for name, n in Counter(p.name for p in pairs).items() if n > 1)
    if twice:
        raise PairingError(
            f"plan entries share a map name ({', '.join(twice)[:200]}); one map file cannot hold both", path
        )
    check_plan_roots(plan, roots, path)
    return plan


def _checked_pair(pair: Pair) -> Pair:
    """Type checks of what mapping will use from a plan entry (raises TypeError/ValueError)."""
    for product in (pair.s2, *pair.s1):
        if not isinstance(product.path, str) or not isinstance(product.product_id, str) or not product.path:
            raise TypeError(f"product path and id must be non-empty text: {product.path!r}")
        if product.modality not in ("s1", "s2"):
            raise ValueError(f"unknown product kind {product.kind!r}")
        product.time  # noqa: B018 - parses sensing_time, raising ValueError if it is not ISO 8601
        if not isinstance(product.footprint, dict) or not isinstance(product.attrs, dict):
            raise TypeError("footprint and attrs must be objects")
    if pair.dt_days is not None and (isinstance(pair.dt_days, bool) or not isinstance(pair.dt_days, int | float)):
        raise TypeError(f"dt_days must be a number or null, got {pair.dt_days!r}")
    if pair.s2.modality != "s2" or any(p.modality != "s1" for p in pair.s1):
        raise ValueError("a pair is one S2 product and S1 products")
    return pair
