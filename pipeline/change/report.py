"""``reports/change.md``: what was compared, where the area went, the largest changes."""

from __future__ import annotations

import pandas as pd

from ..config import Previous
from ..report import markdown_table
from ..workdir import RunManifest
from .codes import GAP, OUTSIDE


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


def change_report(table: pd.DataFrame, state: dict, previous: Previous, manifest: RunManifest) -> str:
    """reports/change.md: what was compared, where the area went, the largest changes."""
    year = manifest.year
    summary = change_summary(table)
    shown = summary.assign(**{c.replace("_m2", "_ha"): (summary[c] / 1e4).round(2)
                              for c in summary.columns if c.endswith("_m2")})
    shown = shown[["commune_code", *[c for c in shown.columns if c.endswith("_ha")]]]
    shown.columns = ["commune", f"{previous.year} (ha)", f"{year} (ha)", "changed (ha)",
                     f"only in {previous.year} (ha)", f"only in {year} (ha)"]
    changes = table[(table["from_code"] != table["to_code"]) & (table["from_code"] != OUTSIDE)
                    & (table["to_code"] != OUTSIDE)]
    largest = (changes.groupby(["from_code", "to_code"], as_index=False)["area_m2"].sum()
               .sort_values("area_m2", ascending=False).head(15))
    largest = largest.assign(area_ha=(largest["area_m2"] / 1e4).round(2)).drop(columns="area_m2")
    largest.columns = [f"from ({previous.year})", f"to ({year})", "area (ha)"]
    used = sum(c["area_m2"] for c in state["communes"].values())
    overlap = sum(c["overlap_removed_m2"] for c in state["communes"].values())
    quarantined = sum(q["area_m2"] for q in state["quarantine"])
    lines = [
        f"# Change {previous.year} → {year}", "",
        f"Previous layer: `{previous.path}` ({sum(c['features'] for c in state['communes'].values())} features, "
        f"{used / 1e4:,.2f} ha used; overlaps counted once: {overlap / 1e4:,.4f} ha removed; quarantined: "
        f"{quarantined / 1e4:,.4f} ha). Codes compared at the level of Biểu 14/TKĐĐ (LUA, HNK, RSX, RPH, RDD "
        "without sub-codes). Every m² of both layers is in `stats/transitions.csv`: "
        f"`{OUTSIDE}` = outside the other layer, `{GAP}` = a {year} gap with no code.", "",
        markdown_table(shown), "",
        f"## Largest changes ({previous.year} → {year})", "",
        markdown_table(largest) if len(largest) else "No change of land use.", "",
    ]
    if state["quarantine"]:
        q = pd.DataFrame(state["quarantine"])
        q["area_ha"] = (q.pop("area_m2") / 1e4).round(4)
        lines += ["## Previous-layer features not used", "", markdown_table(q), ""]
    return "\n".join(lines)
