"""``reports/change.md``: what was compared, where the area went, the largest changes."""

from __future__ import annotations

import pandas as pd

from ..config import Previous
from ..messages import vi
from ..reference import landuse_tree
from ..regime import load_template
from ..report import markdown_table, unit_label, vn_number
from ..workdir import RunManifest
from .codes import GAP, OUTSIDE

#: Changes smaller than this are not listed (they print as 0,00 ha).
MIN_SHOWN_M2 = 50.0


def _comparison_form() -> str:
    """The form that compares two inventories under the active regime (Biểu 14/TKĐĐ, Biểu 05/TKKK)."""
    forms = load_template().forms
    spec = next((f for f in forms if f.kind == "change"), None) or next(f for f in forms if f.kind == "transition")
    return spec.number


def change_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per commune: previous and current area, changed area, area outside each layer (m²)."""
    def total(mask: pd.Series) -> pd.Series:
        return table[mask].groupby("commune_code")["area_m2"].sum()

    both = (table["from_code"] != OUTSIDE) & (table["to_code"] != OUTSIDE)
    out = pd.DataFrame({
        "previous_m2": total(table["from_code"] != OUTSIDE),
        "current_m2": total(table["to_code"] != OUTSIDE),
        "changed_m2": total(both & (table["from_code"] != table["to_code"])),
        "previous_only_m2": total(table["to_code"] == OUTSIDE),
        "current_only_m2": total(table["from_code"] == OUTSIDE),
    }).fillna(0.0)
    return out.reset_index(names="commune_code")


def _largest_changes(table: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """The code pairs with the most area changed (at least 0,01 ha), in ha."""
    changes = table[(table["from_code"] != table["to_code"]) & (table["from_code"] != OUTSIDE)
                    & (table["to_code"] != OUTSIDE)]
    largest = (changes.groupby(["from_code", "to_code"], as_index=False)["area_m2"].sum()
               .sort_values("area_m2", ascending=False))
    largest = largest[largest["area_m2"] >= MIN_SHOWN_M2].head(top)
    return largest.assign(area_ha=largest.pop("area_m2") / 1e4)


def change_report(table: pd.DataFrame, state: dict, previous: Previous, manifest: RunManifest) -> str:
    """reports/change.md (Vietnamese): what was compared, where the area went, the largest changes."""
    year, before = manifest.year, previous.year
    names = manifest.commune_names()
    summary = change_summary(table)
    shown = pd.DataFrame({"Đơn vị hành chính (mã)": [unit_label(c, names) for c in summary["commune_code"]]})
    for column, title in (("previous_m2", f"Năm {before} (ha)"), ("current_m2", f"Năm {year} (ha)"),
                          ("changed_m2", "Thay đổi loại đất (ha)"), ("previous_only_m2", f"Chỉ có năm {before} (ha)"),
                          ("current_only_m2", f"Chỉ có năm {year} (ha)")):
        shown[title] = summary[column].to_numpy() / 1e4
    largest = _largest_changes(table)
    largest.columns = [f"Mã năm {before}", f"Mã năm {year}", "Diện tích (ha)"]
    used = sum(c["area_m2"] for c in state["communes"].values())
    overlap = sum(c["overlap_removed_m2"] for c in state["communes"].values())
    quarantined = sum(q["area_m2"] for q in state["quarantine"])
    features = sum(c["features"] for c in state["communes"].values())
    lines = [
        f"# Biến động sử dụng đất {before} – {year}", "",
        f"Bản đồ kỳ trước: `{manifest.shown(str(previous.path))}` ({vn_number(features, 0)} khoanh, "
        f"dùng {vn_number(used / 1e4)} ha; "
        f"phần chồng đè chỉ tính một lần: bỏ {vn_number(overlap / 1e4, 4)} ha; cách ly: "
        f"{vn_number(quarantined / 1e4, 4)} ha). So sánh theo mã của {_comparison_form()} "
        f"({', '.join(_in_tree_order(load_template().collapse()))} không chia mã chi tiết). "
        "Mọi m² của cả hai bản đồ có trong `stats/transitions.csv`: "
        f"`{OUTSIDE}` = nằm ngoài bản đồ kia, `{GAP}` = khoảng hở năm {year} chưa có mã loại đất.", "",
        markdown_table(shown), "",
        f"## Các biến động lớn nhất ({before} → {year}, từ 0,01 ha)", "",
        markdown_table(largest) if len(largest) else "Không có biến động loại đất.", "",
    ]
    if state["quarantine"]:
        q = pd.DataFrame(state["quarantine"])
        q["area_ha"] = q.pop("area_m2") / 1e4
        q = q.rename(columns={"reason": "Lý do", "features": "Số khoanh", "area_ha": "Diện tích (ha)"})
        if "Lý do" in q:
            q["Lý do"] = q["Lý do"].map(vi)
        lines += [f"## Các khoanh của bản đồ năm {before} không dùng được", "", markdown_table(q), ""]
    return "\n".join(lines)


def _in_tree_order(codes: frozenset[str]) -> list[str]:
    """Codes as the circular lists them (the code tree's order), the same every run."""
    order = {c: i for i, c in enumerate(landuse_tree().codes)}
    return sorted(codes, key=lambda c: (order.get(c, len(order)), c))
