"""What ingest did with each file: the per-file report, the run's result, and
``reports/ingest.json`` / ``ingest.md``."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .. import crs as vn
from ..config import Settings
from ..io import write_json, write_text
from ..report import markdown_table
from ..workdir import WorkDir
from .owners import SOURCE_VI

log = logging.getLogger(__name__)


@dataclass
class FileReport:
    """What ingest did with one file."""

    path: str
    driver: str = ""
    encoding: str = ""
    crs_declared: str | None = None
    crs_chosen: str | None = None
    crs_reason: str = ""
    features_in: int = 0
    features_out: int = 0
    features_quarantined: int = 0
    area_in_m2: float = 0.0
    area_out_m2: float = 0.0
    area_quarantined_m2: float = 0.0
    quarantined_by_reason: dict[str, dict[str, float]] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    inferred: dict[str, dict[str, float]] = field(default_factory=dict)  # rule → features, area_m2 (kept parcels)
    communes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s: %s", self.path, message)

    def merge(self, other: FileReport) -> FileReport:
        """Add what another step found (counts, areas, reasons, repairs, warnings) to this report."""
        for key in ("features_in", "features_out", "features_quarantined", "area_in_m2", "area_out_m2",
                    "area_quarantined_m2"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        for mine_by, theirs_by in ((self.quarantined_by_reason, other.quarantined_by_reason),
                                   (self.inferred, other.inferred)):
            for key, entry in theirs_by.items():
                mine = mine_by.setdefault(key, {"features": 0, "area_m2": 0.0})
                mine["features"] += entry["features"]
                mine["area_m2"] += entry["area_m2"]
        for counts, theirs in ((self.flagged, other.flagged), (self.repairs, other.repairs)):
            for key, count in theirs.items():
                counts[key] = counts.get(key, 0) + count
        self.warnings += other.warnings
        self.communes = sorted(set(self.communes) | set(other.communes))
        return self


@dataclass
class IngestResult:
    """What ``run_ingest`` wrote."""

    files: list[FileReport]
    parcels: dict[str, Path]
    quarantine: dict[str, Path]
    changed: set[str] = field(default_factory=set)

    @property
    def totals(self) -> dict[str, float]:
        keys = ("features_in", "features_out", "features_quarantined",
                "area_in_m2", "area_out_m2", "area_quarantined_m2")
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}


def inference_counts(parcels: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Parcels and m² per rule that decided a code or an object (for the report)."""
    labels = []
    refined = parcels["refined"].notna()
    if refined.any():
        labels.append(("Mã loại đất: " + parcels.loc[refined, "refined"].astype(str), parcels.loc[refined, "area_m2"]))
    inferred = parcels["owner_source"].ne("file")
    if inferred.any():
        part = parcels[inferred]
        labels.append(("Đối tượng " + part["owner_type"].astype(str) + " (" + part["owner_source"].map(SOURCE_VI)
                       + (": " + part["owner_rule"].astype(str)).where(part["owner_rule"].ne(""), "") + ")",
                       part["area_m2"]))
    out: dict[str, dict[str, float]] = {}
    for label, area in labels:
        for key, group in area.groupby(label.to_numpy()):
            out[str(key)] = {"features": int(len(group)), "area_m2": float(group.sum())}
    return out


def inference_table(files: list[FileReport]) -> pd.DataFrame:
    """Each rule that decided a code or an object: parcels and ha, over every file."""
    rows: dict[str, list[float]] = {}
    for f in files:
        for rule, v in f.inferred.items():
            rows.setdefault(rule, [0, 0.0])
            rows[rule][0] += v["features"]
            rows[rule][1] += v["area_m2"]
    return pd.DataFrame([{"rule": r, "parcels": int(n), "area (ha)": a / 1e4} for r, (n, a) in sorted(rows.items())])


def write_ingest_reports(result: IngestResult, work: WorkDir, settings: Settings) -> None:
    """``reports/ingest.json`` (machine) and ``reports/ingest.md`` (officer)."""
    totals = result.totals
    write_json(work.report("ingest.json"), {
        **totals,
        "province": settings.province.name_vi,
        "target_crs": vn.province_crs(settings.province).to_string(),
        "files": [asdict(f) for f in result.files],
    })
    rows = pd.DataFrame([{
        "file": f.path, "format": f.driver, "encoding": f.encoding,
        "CRS declared": f.crs_declared or "(none)", "CRS chosen": f.crs_chosen,
        "why": f.crs_reason, "in": f.features_in, "out": f.features_out,
        "quarantined": f.features_quarantined, "area out (ha)": f.area_out_m2 / 1e4,
        "area quarantined (ha)": f.area_quarantined_m2 / 1e4,
    } for f in result.files])
    lines = [
        f"# Ingest report — {settings.province.name_vi}",
        "",
        f"Target CRS: {vn.province_crs(settings.province).name} "
        f"({vn.province_crs(settings.province).to_string()}), areas in m² in that CRS.",
        "",
        f"- Features in: {totals['features_in']}, out: {totals['features_out']}, "
        f"quarantined: {totals['features_quarantined']}",
        f"- Area in: {totals['area_in_m2'] / 1e4:.4f} ha = out {totals['area_out_m2'] / 1e4:.4f} ha "
        f"+ quarantined {totals['area_quarantined_m2'] / 1e4:.4f} ha",
        "",
        markdown_table(rows),
        "",
    ]
    inferred = inference_table(result.files)
    if len(inferred):
        lines += ["## Inferred objects and refined codes (listed parcel by parcel in reports/review/)", "",
                  markdown_table(inferred), ""]
    for f in result.files:
        notes = [f"- quarantined, {r}: {int(v['features'])} features, {v['area_m2'] / 1e4:.4f} ha"
                 for r, v in f.quarantined_by_reason.items()]
        notes += [f"- flagged (kept), {r}: {n}" for r, n in f.flagged.items()]
        notes += [f"- repaired, {r}: {n}" for r, n in f.repairs.items()]
        notes += [f"- inferred, {r}: {int(v['features'])} parcels, {v['area_m2'] / 1e4:.4f} ha"
                  for r, v in f.inferred.items()]
        notes += [f"- warning: {w}" for w in f.warnings]
        if notes:
            lines += [f"## {f.path}", "", *notes, ""]
    write_text(work.report("ingest.md"), "\n".join(lines))
