"""`make bench`: time the stages on synthetic data and write benchmarks/results.json.

Cases (all by default, or name some with --only):
- qa_khoanh: QA and khoanh đất of one 50 000-parcel commune (target ≤ 5 s).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results.json")


def _timed(func, *args, **kwargs):
    start = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_qa_khoanh(parcels: int = 62_000) -> dict:
    """QA + khoanh of one big synthetic commune (the sample generator asked for 62 000
    points, which gives a little over 50 000 parcels once fragments are merged)."""
    import geopandas as gpd

    from pipeline import crs as vn
    from pipeline.khoanh import build_khoanh
    from pipeline.qa import qa_commune
    from pipeline.sample import SAMPLE_COMMUNES, commune_boundaries, generate_commune, with_planted_problems

    boundaries = commune_boundaries()
    commune = replace(next(c for c in SAMPLE_COMMUNES if c.code == "06253"), parcels=parcels)
    raw, generate_s = _timed(generate_commune, commune, boundaries)
    raw, _ = with_planted_problems(raw, commune, boundaries)
    frame = gpd.GeoDataFrame({
        "commune_code": commune.code, "sheet_no": raw["SHBANDO"].astype(str), "parcel_no": raw["SHTHUA"].astype(str),
        "landuse": raw["KHLOAIDAT"].str.split("+").str[0], "owner_type": raw["DOITUONG"],
        "area_m2": raw.geometry.area, "uses": None, "flags": None,
    }, geometry=list(np.asarray(__import__("shapely").make_valid(raw.geometry.values))), crs=vn.province_crs("20"))
    qa, qa_s = _timed(qa_commune, frame)
    khoanh, khoanh_s = _timed(build_khoanh, frame)
    return {
        "parcels": len(frame), "generate_s": round(generate_s, 2), "qa_s": round(qa_s, 2),
        "khoanh_s": round(khoanh_s, 2), "qa_plus_khoanh_s": round(qa_s + khoanh_s, 2),
        "khoanh": len(khoanh), "problems": qa.counts(), "target_s": 5.0,
    }


CASES = {"qa_khoanh": bench_qa_khoanh}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to run")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    for name in args.only or CASES:
        print(f"== {name}", flush=True)
        results[name] = CASES[name]()
        print(json.dumps(results[name], indent=2), flush=True)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results → {RESULTS}")


if __name__ == "__main__":
    main()
