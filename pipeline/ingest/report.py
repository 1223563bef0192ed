"""What ingest did with each file: the per-file report, the run's result, and
``reports/ingest.json`` / ``ingest.md``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .. import crs as vn
from ..config import Settings
from ..io import write_json_if_changed, write_text_if_changed
from ..messages import vi
from ..paths import shown_path
from ..report import markdown_table, unit_label, vn_number
from ..workdir import RunManifest, WorkDir
from .owners import SOURCE_VI, rule_text
from .place import NEIGHBOUR_FLAG, PLACED_FLAG

#: How the report's inference table starts a commune code kiemke found, and how it found it.
COMMUNE_RULE = "Mã xã "
COMMUNE_RULES = {PLACED_FLAG: "theo vị trí thửa trên tệp ranh giới xã",
                 NEIGHBOUR_FLAG: "mã xã để trống, lấy theo thửa gần nhất có mã của tệp"}


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
    skipped: str = ""  # why a layer beside the parcels was not read
    corrections_used: list[str] = field(default_factory=list)  # identities of the officer's corrections applied

    def warn(self, message: str) -> None:
        """Keep a warning for the report; the stage says it on the console
        (the file may be read on a worker, whose console is not the officer's)."""
        self.warnings.append(message)

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
        self.corrections_used = sorted(set(self.corrections_used) | set(other.corrections_used))
        self.communes = sorted(set(self.communes) | set(other.communes))
        return self


@dataclass
class IngestResult:
    """What ``run_ingest`` wrote."""

    files: list[FileReport]
    parcels: dict[str, Path]
    quarantine: dict[str, Path]
    changed: set[str] = field(default_factory=set)
    gone: list[str] = field(default_factory=list)  # communes no file gives any more: what they left was removed

    @property
    def layers_read(self) -> int:
        """Files and layers opened (not the copies left, nor a corrections file's report)."""
        return sum(1 for report in self.files if report.driver)

    @property
    def totals(self) -> dict[str, float]:
        keys = ("features_in", "features_out", "features_quarantined",
                "area_in_m2", "area_out_m2", "area_quarantined_m2")
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}


def inference_counts(parcels: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Parcels and m² per rule that decided a commune, a code or an object (for the report)."""
    labels = []
    flags = parcels["flags"].astype("string")
    for flag, how in COMMUNE_RULES.items():
        found = flags.str.contains(flag, regex=False).fillna(False).astype(bool)
        if found.any():
            labels.append((COMMUNE_RULE + parcels.loc[found, "commune_code"].astype(str) + f" ({how})",
                           parcels.loc[found, "area_m2"]))
    refined = parcels["refined"].notna()
    if refined.any():
        labels.append(("Mã loại đất: " + parcels.loc[refined, "refined"].astype(str), parcels.loc[refined, "area_m2"]))
    inferred = parcels["owner_source"].ne("file")
    if inferred.any():
        part = parcels[inferred]
        rule = part["owner_rule"].map(rule_text)
        labels.append(("Đối tượng " + part["owner_type"].astype(str) + " (" + part["owner_source"].map(SOURCE_VI)
                       + (": " + rule).where(rule.ne(""), "") + ")", part["area_m2"]))
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
    return pd.DataFrame([{"Quy tắc": r, "Số thửa": int(n), "Diện tích (ha)": a / 1e4}
                         for r, (n, a) in sorted(rows.items())])


def _commune_inferred(f: FileReport) -> bool:
    """Whether kiemke found the commune code of some of the file's parcels."""
    return any(rule.startswith(COMMUNE_RULE) for rule in f.inferred)


def _ha(m2: float) -> str:
    return vn_number(m2 / 1e4, 4)


def _file_table(files: list[FileReport], input_root: Path | None) -> pd.DataFrame:
    return pd.DataFrame([{
        "Tệp": shown_path(f.path, input_root), "Định dạng": f.driver, "Bảng mã": vi(f.encoding),
        "Hệ tọa độ khai báo": f.crs_declared or ("" if f.skipped and not f.driver else "(không có)"),  # a copy
        "Hệ tọa độ dùng": f.crs_chosen,
        "Căn cứ": vi(f.crs_reason), "Số thửa đọc": f.features_in, "Số thửa nhận": f.features_out,
        "Số thửa cách ly": f.features_quarantined, "Diện tích nhận (ha)": f.area_out_m2 / 1e4,
        "Diện tích cách ly (ha)": f.area_quarantined_m2 / 1e4,
    } for f in files])


def _file_notes(f: FileReport) -> list[str]:
    """What was done to one file, in the officer's words."""
    notes = [f"- **Không đọc** — {vi(f.skipped)}"] if f.skipped else []
    notes += [f"- Cách ly — {vi(r)}: {int(v['features'])} thửa, {_ha(v['area_m2'])} ha"
              for r, v in f.quarantined_by_reason.items()]
    notes += [f"- Đánh dấu (vẫn thống kê) — {vi(r)}: {n} thửa" for r, n in f.flagged.items()]
    notes += [f"- Đã sửa — {vi(r)}: {n}" for r, n in f.repairs.items()]
    notes += [f"- Suy luận — {r}: {int(v['features'])} thửa, {_ha(v['area_m2'])} ha"
              for r, v in f.inferred.items()]
    notes += [f"- **Cảnh báo**: {vi(w)}" for w in f.warnings]
    return notes


def _commune_labels(keys: list[str], settings: Settings) -> list[str]:
    """"Xã Tân Đoàn (06307)" for each commune, by the names the boundaries and the config give."""
    names = RunManifest.from_settings(settings).commune_names()
    return [unit_label(key, names) for key in keys]


def write_ingest_reports(result: IngestResult, work: WorkDir, settings: Settings) -> None:
    """``reports/ingest.json`` (machine, English keys and messages) and
    ``reports/ingest.md`` (the officer's, in Vietnamese)."""
    totals = result.totals
    target = vn.province_crs(settings.province)
    write_json_if_changed(work.report("ingest.json"), {
        **totals,
        "province": settings.province.name_vi,
        "target_crs": target.to_string(),
        "files": [asdict(f) for f in result.files],
    })
    lines = [
        f"# Báo cáo đọc dữ liệu thửa đất — {settings.province.title(settings.reference_date)}",
        "",
        f"Hệ tọa độ đích: {target.name} ({target.to_string()}); diện tích tính bằng m² trong hệ tọa độ này.",
        "",
        f"- Số thửa đọc: {totals['features_in']}, nhận: {totals['features_out']}, "
        f"cách ly: {totals['features_quarantined']}",
        f"- Diện tích đọc: {_ha(totals['area_in_m2'])} ha = nhận {_ha(totals['area_out_m2'])} ha "
        f"+ cách ly {_ha(totals['area_quarantined_m2'])} ha",
        "- Các thửa cách ly, suy đối tượng và chuyển mã được liệt kê từng thửa trong sổ rà soát "
        "`reports/review/<mã xã>.xlsx`.",
        *(["- Các thửa có mã xã do kiemke suy ra mang ghi chú cách suy (cột «Ghi chú kiểm tra» của lớp thửa đất "
           "trong GeoPackage)."] if any(_commune_inferred(f) for f in result.files) else []),
        *([f"- Không còn tệp nào cho thửa của {', '.join(_commune_labels(result.gone, settings))}: mọi kết quả của "
           "xã đã được xóa; biểu, bản đồ của huyện và của tỉnh được lập lại không có xã này (sổ rà soát của xã "
           "được giữ lại)."] if result.gone else []),
        "",
        markdown_table(_file_table(result.files, settings.input_root)),
        "",
    ]
    inferred = inference_table(result.files)
    if len(inferred):
        lines += ["## Mã xã, đối tượng sử dụng đất suy luận và mã loại đất chuyển đổi", "",
                  markdown_table(inferred), ""]
    for f in result.files:
        notes = _file_notes(f)
        if notes:
            lines += [f"## {shown_path(f.path, settings.input_root)}", "", *notes, ""]
    write_text_if_changed(work.report("ingest.md"), "\n".join(lines))
