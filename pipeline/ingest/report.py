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
        for reason, entry in other.quarantined_by_reason.items():
            mine = self.quarantined_by_reason.setdefault(reason, {"features": 0, "area_m2": 0.0})
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
    for f in result.files:
        notes = [f"- quarantined, {r}: {int(v['features'])} features, {v['area_m2'] / 1e4:.4f} ha"
                 for r, v in f.quarantined_by_reason.items()]
        notes += [f"- flagged (kept), {r}: {n}" for r, n in f.flagged.items()]
        notes += [f"- repaired, {r}: {n}" for r, n in f.repairs.items()]
        notes += [f"- warning: {w}" for w in f.warnings]
        if notes:
            lines += [f"## {f.path}", "", *notes, ""]
    write_text(work.report("ingest.md"), "\n".join(lines))
