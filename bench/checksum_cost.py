"""Benchmark: cost of verifying SAFE files against their ``manifest.safe`` checksums.

What ``map`` adds per product unless ``--skip-checksums``: every file it reads is hashed once more
(`io.archive.SafeArchive.checksum`, 8 MiB blocks): SHA3-256 for Sentinel-2 band files, MD5 for
Sentinel-1 measurements. Measured on a ``--gib`` GiB file of random bytes in a SAFE-shaped folder,
read from the page cache (the decode that follows reads the same bytes), so the figure is the
hashing itself; a cold read adds the disk's own time. Reported as seconds per GB and per
full-size product (S2 L2A at 10 m: the 12 model bands ≈ 0.75 GB; S1 IW GRDH VV + VH ≈ 1.7 GB).

    python -m cloudlulc_edge.bench.checksum_cost [--gib 1] [--out bench/results] [--readme docs/performance.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudlulc_edge.bench.utils import environment, markdown_table, publish
from cloudlulc_edge.io.archive import SafeArchive

#: Bytes the readers hash for one full-size product (the files `map` reads), GB (10⁹ bytes).
PRODUCT_GB = {"SHA3-256": ("S2 L2A, 12 bands at 10 m", 0.75), "MD5": ("S1 IW GRDH, VV + VH", 1.7)}


def measure(gib: float, work: Path, repeats: int = 3) -> list[dict[str, Any]]:
    """Best-of-``repeats`` hashing time per algorithm of one ``gib`` GiB member."""
    product = work / "BENCH.SAFE"
    (product / "measurement").mkdir(parents=True, exist_ok=True)
    member = product / "measurement" / "data.bin"
    size = int(gib * 2**30)
    if not member.is_file() or member.stat().st_size != size:
        with member.open("wb") as f:
            for _ in range(size // 2**24):
                f.write(os.urandom(2**24))
    archive = SafeArchive(product)
    archive.checksum("measurement/data.bin", "MD5")  # warm the page cache
    rows = []
    for algorithm, (product_name, product_gb) in PRODUCT_GB.items():
        best = min(_timed(archive, algorithm) for _ in range(repeats))
        per_gb = best / (size / 1e9)
        rows.append({"algorithm": algorithm, "seconds_per_gb": round(per_gb, 2), "mb_per_s": round(size / 1e6 / best),
                     "product": product_name, "product_gb": product_gb,
                     "seconds_per_product": round(per_gb * product_gb, 2)})  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def _timed(archive: SafeArchive, algorithm: str) -> float:
    start = time.perf_counter()
    archive.checksum("measurement/data.bin", algorithm)
    return time.perf_counter() - start


def render(result: dict[str, Any]) -> str:
    """Markdown: one row per algorithm."""
    table = markdown_table(
        result["rows"],
        [("algorithm", "checksum"), ("seconds_per_gb", "s per GB"), ("mb_per_s", "MB/s"), ("product", "product"),
         ("seconds_per_product", "s per product")],
    )  # fmt: skip
    return (
        f"Checksum verification (one thread, page cache), {result['gib']:g} GiB member, best of 3; "
        f"{result['machine']}, load {result['load']}, {result['date']}.\n\n{table}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cloudlulc-bench-checksum")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--readme", type=Path, help="page to update between checksum-cost markers (docs/performance.md)"
    )
    args = parser.parse_args(argv)
    load = f"{os.getloadavg()[0]:.1f}"
    rows = measure(args.gib, args.work)
    env = environment()
    result = {"gib": args.gib, "rows": rows, "load": load, "environment": env,
              "machine": env.get("cpu", "this machine"), "date": datetime.now().strftime("%Y-%m-%d")}  # fmt: skip
    publish("checksum_cost", result, render(result), args.readme, "checksum-cost", args.out)


if __name__ == "__main__":
    main()
