"""Forms: the statistical forms of Circular 27/2018 (Biểu 01–04/TKĐĐ and the
khoanh list), per commune, district and province, as XLSX and CSV.

Layouts are data (``pipeline/templates/<regime>.toml``). Numbers come from
``stats/areas.csv`` (m², from the khoanh): each commune's leaf cell (land-use
code × user/manager column) is rounded once to 0.01 ha (half up); every other
figure — parent rows, totals, districts, the province — is a sum of those
displayed cells, so a printed parent always equals the sum of its printed
children and a district the sum of its communes. Consistency checks run on
every build and stop it with a clear message when broken.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import WorkDir
from .errors import KiemkeError
from .forms_change import ChangeInputs
from .io import up_to_date
from .reference import landuse_tree

log = logging.getLogger(__name__)

CENTI_HA_M2 = 100.0  # one displayed unit, 0.01 ha, in m²
ROW_META = ("stt", "name", "code", "level", "kind")  # a form table's descriptive columns


def value_columns(table: pd.DataFrame) -> list[str]:
    """The numeric columns of a form table, in print order."""
    return [c for c in table.columns if c not in ROW_META]


def _owner_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c[:1] == "c" and c[1:].isdigit()]


class FormConsistencyError(KiemkeError):
    """A consistency check of the forms failed (a bug or a broken input table)."""


# ------------------------------------------------------------------ templates


@dataclass(frozen=True)
class OwnerColumn:
    header: str
    codes: tuple[str, ...]
    block: str  # "users" | "managers"
    group: str
    confidence: str
    source: str


@dataclass(frozen=True)
class FormSpec:
    id: str
    number: str
    file: str
    title: str
    title_confidence: str
    kind: str  # "by_owner" | "by_unit" | "khoanh_list" | "change" (Biểu 14) | "transition" (the matrix)
    levels: tuple[str, ...]
    column_set: str = ""
    total_header: str = ""
    units_header: str = ""
    row_roots: tuple[str, ...] = ()
    observation_roots: tuple[str, ...] = ()
    total_row: bool = False
    collapse: tuple[str, ...] = ()  # codes shown without their sub-codes (Biểu 14)


@dataclass(frozen=True)
class Template:
    """A regime's forms: texts, column sets and forms, from a TOML file."""

    name: str
    regime: dict[str, Any]
    column_sets: dict[str, dict[str, Any]]
    forms: tuple[FormSpec, ...]
    maps: dict[str, Any] = field(default_factory=dict)

    def columns(self, name: str) -> list[OwnerColumn]:
        return [OwnerColumn(**{**c, "codes": tuple(c["codes"])}) for c in self.column_sets[name]["columns"]]

    def form(self, form_id: str) -> FormSpec:
        for spec in self.forms:
            if spec.id == form_id:
                return spec
        raise KeyError(f"form {form_id!r} not in template {self.name}; forms: {[f.id for f in self.forms]}")


@cache
def load_template(name: str = "tt27_2018") -> Template:
    """Read ``pipeline/templates/<name>.toml``, or a template file given by path."""
    path = Path(name) if name.endswith(".toml") else resources.files("pipeline") / "templates" / f"{name}.toml"
    if not path.is_file():
        available = sorted(p.name.removesuffix(".toml") for p in path.parent.iterdir() if p.name.endswith(".toml"))
        raise KiemkeError(f"form template {name!r} does not exist; available: {available}.")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    forms = tuple(
        FormSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in form.items()}) for form in data["forms"]
    )
    return Template(Path(name).stem, data["regime"], data["column_sets"], forms, data.get("maps", {}))


# ---------------------------------------------------------------- computation


@dataclass(frozen=True)
class Unit:
    """An administrative unit a form is made for."""

    level: str  # "xa" | "huyen" | "tinh"
    code: str
    name: str
    communes: tuple[str, ...]
    commune_name: str = ""
    district_name: str = ""
    province_name: str = ""
    children: tuple[Unit, ...] = field(default=(), compare=False)
    parent_code: str = ""

    @property
    def key(self) -> str:
        return f"{self.level}/{self.code}"


def round_half_up(values: np.ndarray) -> np.ndarray:
    """m² → whole centi-hectares (0.01 ha), rounding halves up (as by hand)."""
    return np.floor(np.asarray(values, dtype=float) / CENTI_HA_M2 + 0.5).astype(np.int64)


def leaf_cells(areas: pd.DataFrame, columns: list[OwnerColumn], *, form: str = "") -> pd.DataFrame:
    """Per commune × leaf code, the rounded cell of each owner column (centi-ha).

    Rows: MultiIndex (commune_code, landuse); columns: the owner columns in order.
    An owner code that no column takes is an error (it would be lost).
    """
    column_of = {code: i for i, col in enumerate(columns) for code in col.codes}
    unknown = sorted(set(areas["owner_type"]) - set(column_of))
    if unknown:
        raise FormConsistencyError(
            f"{form}: user/manager codes {unknown} have no column in this form; their area would be lost. "
            "Correct the codes in the source, or add them to a column of the template."
        )
    frame = areas.assign(column=areas["owner_type"].map(column_of))
    summed = frame.groupby(["commune_code", "landuse", "column"])["area_m2"].sum()
    cells = round_half_up(summed.to_numpy())
    wide = pd.Series(cells, index=summed.index).unstack("column", fill_value=0)
    return wide.reindex(columns=range(len(columns)), fill_value=0)


def form_rows(spec: FormSpec, total_label: str = "") -> list[dict[str, Any]]:
    """The rows of a form in the circular's order: total row, then the code tree
    (hierarchical numbers 1, 1.1, 1.1.1 … from ``landuse_codes.csv``)."""
    tree = landuse_tree()
    rows: list[dict[str, Any]] = []
    if spec.total_row:
        rows.append({"stt": "", "name": total_label, "code": "", "level": 0, "kind": "total"})
    for roots, kind in ((spec.row_roots, "row"), (spec.observation_roots, "observation")):
        for code in tree.codes:
            if tree.root(code) in roots and not set(tree.ancestors(code)) & set(spec.collapse):
                stt = tree.table.at[code, "form_stt"].split(" (")[0]
                rows.append({"stt": stt, "name": tree.name(code), "code": code,
                             "level": int(tree.table.at[code, "level"]), "kind": kind})
    return rows


def subtree_sums(cells: pd.DataFrame, rows: list[dict[str, Any]], roots: tuple[str, ...]) -> np.ndarray:
    """Row values (rows × columns): each row the sum of the cells of its code and
    the codes below it (the total row: of everything under ``roots``)."""
    tree = landuse_tree()
    codes = [c for c in cells.index if c in tree]
    values = np.zeros((len(rows), cells.shape[1]), dtype=np.int64)
    for r, row in enumerate(rows):
        if row["kind"] == "total":
            members = [c for c in codes if tree.root(c) in roots]
        else:
            members = [c for c in codes if c == row["code"] or row["code"] in tree.ancestors(c)]
        if members:
            values[r] = cells.loc[members].to_numpy(dtype=np.int64).sum(axis=0)
    return values


def owner_table(leaf: pd.DataFrame, spec: FormSpec, columns: list[OwnerColumn], total_label: str = "") -> pd.DataFrame:
    """A by-owner form (01/02/03): rows × [total, users total, users…, managers total, managers…]."""
    rows = form_rows(spec, total_label)
    values = subtree_sums(leaf, rows, spec.row_roots)
    users = [i for i, c in enumerate(columns) if c.block == "users"]
    managers = [i for i, c in enumerate(columns) if c.block == "managers"]
    user_total = values[:, users].sum(axis=1)
    manager_total = values[:, managers].sum(axis=1)
    out = pd.DataFrame(rows)
    out["total"] = user_total + manager_total
    out["users_total"] = user_total
    for i in users:
        out[f"c{i}"] = values[:, i]
    out["managers_total"] = manager_total
    for i in managers:
        out[f"c{i}"] = values[:, i]
    return out


def unit_leaf_cells(cells: pd.DataFrame, unit: Unit) -> pd.DataFrame:
    """A unit's leaf cells: the sum of its communes' rounded cells."""
    present = [c for c in unit.communes if c in cells.index.get_level_values(0)]
    if not present:
        return pd.DataFrame(0, index=pd.Index([], name="landuse"), columns=cells.columns)
    return cells.loc[present].groupby(level="landuse").sum()


def unit_table(cells: pd.DataFrame, spec: FormSpec, unit: Unit, total_label: str = "") -> pd.DataFrame:
    """Biểu 04: rows × [total, one column per sub-unit] (each the sub-unit's total)."""
    rows = form_rows(spec, total_label)
    out = pd.DataFrame(rows)
    per_child = []
    for child in unit.children:
        leaf = unit_leaf_cells(cells, child).sum(axis=1).to_frame("all")
        per_child.append(subtree_sums(leaf, rows, spec.row_roots)[:, 0])
    matrix = np.column_stack(per_child) if per_child else np.zeros((len(rows), 0), dtype=np.int64)
    out["total"] = matrix.sum(axis=1)
    for child, column in zip(unit.children, matrix.T):
        out[f"u{child.code}"] = column
    return out


def khoanh_table(khoanh: pd.DataFrame) -> pd.DataFrame:
    """The khoanh list: number, m², current code, combined-use codes, owner, note."""
    def combined(uses: object, landuse: object) -> str:
        return "+".join(c for c in json.loads(uses) if c != landuse) if isinstance(uses, str) else ""

    frame = khoanh.sort_values("khoanh_no")
    return pd.DataFrame({
        "khoanh_no": frame["khoanh_no"].to_numpy(),
        "area_m2": frame["area_m2"].round(1).to_numpy(),
        "landuse": frame["landuse"].fillna("").to_numpy(),
        "landuse_previous": frame["landuse_previous"].fillna("").to_numpy() if "landuse_previous" in frame else "",
        "combined_use": [combined(u, c) for u, c in zip(frame["uses"], frame["landuse"])],
        "owner_type": frame["owner_type"].fillna("").to_numpy(),
        "owner_previous": "",
        "zone": "",
        "note": frame["flag"].fillna("").to_numpy(),
    })


# -------------------------------------------------------------------- checks


def check_forms(tables: dict[tuple[str, str], pd.DataFrame], units: list[Unit], template: Template) -> None:
    """The consistency checks; raise FormConsistencyError naming what broke."""
    problems = []
    for (form_id, key), table in tables.items():
        spec = template.form(form_id)
        if spec.kind != "by_owner":
            continue
        users = [c for c in _owner_columns(table) if template.columns(spec.column_set)[int(c[1:])].block == "users"]
        if not (table["total"] == table["users_total"] + table["managers_total"]).all():
            problems.append(f"{spec.number} {key}: (4) ≠ users + managers")
        if not (table["users_total"] == table[users].sum(axis=1)).all():
            problems.append(f"{spec.number} {key}: users total ≠ Σ user columns")
        if spec.total_row:
            body = table.set_index("code")
            if table["total"].iat[0] != sum(body.at[g, "total"] for g in spec.row_roots):
                problems.append(f"{spec.number} {key}: total row ≠ rows 1 + 2 + 3")
    for unit in units:
        key = f"{unit.level}/{unit.code}"
        t01 = tables.get(("01", key))
        if t01 is None:
            continue
        t01 = t01.set_index("code")
        for form_id in ("02", "03"):
            table = tables.get((form_id, key))
            if table is None:
                continue
            sub = table.set_index("code")["total"]
            if not (sub == t01.loc[sub.index, "total"]).all():
                problems.append(f"{template.form(form_id).number} {key}: totals differ from Biểu 01 rows "
                                "(a user/manager column of Biểu 01 is missing from this form)")
        t14 = tables.get(("14", key))
        if t14 is not None:
            shown = t14.set_index("code")["current"].drop("", errors="ignore")
            if t14["current"].iat[0] != t01["total"].iat[0] or not (shown == t01.loc[shown.index, "total"]).all():
                problems.append(f"Biểu 14 {key}: (4) differs from Biểu 01")
            matrix = tables.get(("CC", key))
            if matrix is not None:
                body = matrix[matrix["code"] != ""].set_index("code")
                if not (body["previous"] == t14.set_index("code").loc[body.index, "previous"]).all():
                    problems.append(f"Biểu 14 {key}: (5) differs from the matrix's row totals")
                current = matrix.iloc[-1]
                if not all(current[f"to_{c}"] == shown.get(c, current[f"to_{c}"]) for c in body.index):
                    problems.append(f"Transition matrix {key}: column totals differ from Biểu 14 (4)")
        t04 = tables.get(("04", key))
        if t04 is not None:
            units_cols = [c for c in t04.columns if c.startswith("u")]
            if not (t04["total"] == t04[units_cols].sum(axis=1)).all():
                problems.append(f"Biểu 04 {key}: total ≠ Σ sub-units")
            if not (t04.set_index("code")["total"].drop("", errors="ignore")
                    == t01["total"].drop("", errors="ignore")).all():
                problems.append(f"Biểu 04 {key}: totals differ from Biểu 01")
        if unit.children and all(("01", f"{c.level}/{c.code}") in tables for c in unit.children):
            summed = sum(tables[("01", f"{c.level}/{c.code}")]["total"].to_numpy() for c in unit.children)
            if not (summed == t01["total"].to_numpy()).all():
                problems.append(f"Biểu 01 {key}: ≠ Σ of its {len(unit.children)} sub-units")
    if problems:
        raise FormConsistencyError("Forms are inconsistent: " + "; ".join(problems) + ".")


# ---------------------------------------------------------------------- units


def _strip(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):].strip()
    return name


def build_units(commune_codes: list[str], boundaries: pd.DataFrame, province_name: str,
                province_code: str) -> list[Unit]:
    """Communes, their districts and the province, from the boundary attributes.

    A commune missing from the boundary file goes under district "000"
    ("không rõ huyện") so that its area still reaches the province.
    """
    info = boundaries.set_index("commune_code") if len(boundaries) else pd.DataFrame()
    district_names: dict[str, str] = {}
    communes = []
    for code in sorted(commune_codes):
        known = code in info.index
        name = str(info.at[code, "commune_name"]) if known else code
        district = str(info.at[code, "district_code"]) if known else "000"
        district_names.setdefault(district, str(info.at[code, "district_name"]) if known else "(không rõ huyện)")
        communes.append(Unit("xa", code, name, (code,), commune_name=_strip(name, ("Xã ",)),
                             district_name=_strip(district_names[district], ("Huyện ", "Thành phố ", "Thị xã ")),
                             province_name=province_name, parent_code=district))
    districts = []
    for district, name in sorted(district_names.items()):
        members = tuple(c for c in communes if c.parent_code == district)
        districts.append(Unit("huyen", district, name, tuple(c.code for c in members),
                              district_name=members[0].district_name, province_name=province_name,
                              children=members, parent_code=province_code))
    province = Unit("tinh", province_code, f"Tỉnh {province_name}", tuple(c.code for c in communes),
                    province_name=province_name, children=tuple(districts))
    return [*communes, *districts, province]


# ---------------------------------------------------------------------- stage


def _leaves_under(roots: tuple[str, ...]) -> set[str]:
    tree = landuse_tree()
    return {c for c in tree.leaves if tree.root(c) in roots}


def compute_forms(areas: pd.DataFrame, units: list[Unit], template: Template,
                  khoanh: dict[str, pd.DataFrame] | None = None,
                  change: ChangeInputs | None = None) -> dict[tuple[str, str], pd.DataFrame]:
    """Every form table for every unit (pure: no I/O), checked for consistency.
    The change forms are made only when ``change`` is given."""
    label = template.regime["total_row"]
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    for spec in template.forms:
        if spec.kind == "khoanh_list":
            for unit in units:
                if unit.level in spec.levels and khoanh and unit.code in khoanh:
                    tables[(spec.id, unit.key)] = khoanh_table(khoanh[unit.code])
            continue
        changes = spec.kind in ("change", "transition")
        if changes and change is None:
            continue
        columns = template.columns(spec.column_set)
        scope = areas[areas["landuse"].isin(_leaves_under(spec.row_roots + spec.observation_roots))]
        cells = leaf_cells(scope, columns, form=spec.number)
        if changes:
            tables.update(change_tables(spec, cells, units, change, label))
            continue
        for unit in units:
            if unit.level not in spec.levels:
                continue
            if spec.kind == "by_owner":
                tables[(spec.id, unit.key)] = owner_table(unit_leaf_cells(cells, unit), spec, columns, label)
            else:
                tables[(spec.id, unit.key)] = unit_table(cells, spec, unit, label)
    check_forms(tables, units, template)
    return tables


def change_tables(spec: FormSpec, cells: pd.DataFrame, units: list[Unit], change: ChangeInputs,
                  total_label: str) -> dict[tuple[str, str], pd.DataFrame]:
    """Biểu 14 or the transition matrix for every unit of its levels."""
    from .forms_change import (
        change_table, commune_matrices, current_targets, matrix_codes, matrix_table, statistics_cells, sum_over,
    )

    collapse = frozenset(spec.collapse)
    codes = matrix_codes(change.transitions, collapse, spec.row_roots)
    matrices = commune_matrices(change.transitions, current_targets(cells, collapse), codes)
    statistics = (statistics_cells(change.statistics, collapse) if change.statistics is not None else None)
    tables = {}
    for unit in units:
        if unit.level not in spec.levels:
            continue
        matrix = sum_over(matrices, unit.communes)
        if spec.kind == "change":
            stats = sum_over(statistics, unit.communes) if statistics is not None else None
            tables[(spec.id, unit.key)] = change_table(spec, total_label, matrix, stats, change.previous_year,
                                                       change.year)
        else:
            tables[(spec.id, unit.key)] = matrix_table(matrix, codes, change.previous_year, change.year)
    return tables


def sheet_notes(spec: FormSpec, template: Template, numbers: list[str],
                change: ChangeInputs | None = None) -> list[str]:
    """Short notes printed under a form: what is inferred, how numbers were rounded."""
    notes = []
    if "inferred" in spec.title_confidence:
        notes.append(f"Ghi chú: mẫu biểu tái dựng (inferred) — {spec.title_confidence}.")
    if spec.kind == "by_owner":
        inferred = [numbers[k] for k, col in _column_numbers(spec, template) if col.confidence != "confirmed"]
        if inferred:
            notes.append(f"Ghi chú: các cột {', '.join(inferred)} (đối tượng sử dụng, quản lý đất) được tái dựng "
                         "(inferred) theo danh mục VBDLIS và mẫu TT 28/2014, chưa đối chiếu với phụ lục TT 27/2018.")
    if spec.kind != "khoanh_list":
        notes.append("Số liệu tính từ diện tích (m²) của các khoanh đất trên bản đồ, hệ VN-2000; mỗi ô chi tiết "
                     "của cấp xã làm tròn 0,01 ha; các dòng, cột tổng và số liệu cấp huyện, tỉnh là tổng của các "
                     "ô đã làm tròn.")
    if spec.observation_roots:
        notes.append(f"Nhóm {', '.join(spec.observation_roots)}: {template.regime['observation_note']}.")
    if spec.kind == "khoanh_list" and change is None:
        notes.append("Cột (4), (7), (8): chưa có số liệu kỳ trước và mã khu vực tổng hợp trong dữ liệu đầu vào.")
    elif spec.kind == "khoanh_list":
        notes.append(f"Cột (4): loại đất năm {change.previous_year} chiếm phần lớn diện tích khoanh (chồng xếp với "
                     f"bản đồ kiểm kê năm {change.previous_year}); cột (7), (8): chưa có số liệu trong dữ liệu đầu vào.")
    if spec.kind in ("change", "transition"):
        notes.append(f"Diện tích năm {change.previous_year} và chu chuyển: chồng xếp chính xác bản đồ kiểm kê năm "
                     f"{change.previous_year} với các thửa, khoanh đất năm {change.year}, so sánh theo mã của Biểu 14 "
                     "(LUA, HNK, RSX, RPH, RDD không chia mã chi tiết). Ô của ma trận được làm tròn 0,01 ha sao cho "
                     "tổng mỗi cột bằng số liệu của Biểu 01.")
    if spec.kind == "change" and change.statistics is None:
        notes.append("Cột (7), (8): không có số liệu thống kê năm trước trong dữ liệu đầu vào.")
    if spec.kind == "transition":
        notes.append(f"Dòng/cột \"Không thuộc diện tích\": phần diện tích nằm ngoài ranh giới bản đồ của năm kia, "
                     f"và các khoảng hở chưa xác định loại đất năm {change.year}.")
    return notes


def _column_numbers(spec: FormSpec, template: Template) -> list[tuple[int, OwnerColumn]]:
    """(index in the numbered row, column) for each owner column of a by-owner form."""
    columns = template.columns(spec.column_set)
    users = [c for c in columns if c.block == "users"]
    managers = [c for c in columns if c.block == "managers"]
    out = [(5 + k, c) for k, c in enumerate(users)]
    out += [(5 + len(users) + 1 + k, c) for k, c in enumerate(managers)]
    return out


def run_forms(workdir: Path, boundaries: Path | None = None, template_name: str = "tt27_2018") -> dict[str, Any]:
    """Write every form for every commune, district and the province."""
    from tqdm import tqdm

    from .boundaries import load_boundaries
    from .form_writer import (
        KHOANH_HEADERS, change_headers, matrix_headers, owner_headers, unit_headers, write_form_csv, write_xlsx,
    )
    from .io import write_csv, write_text

    work = WorkDir(workdir)
    manifest = work.read_manifest()
    template = load_template(template_name)
    spec_bounds = manifest.get("boundaries")
    if boundaries is not None:
        spec_bounds = {**(spec_bounds or {}), "path": str(boundaries)}
    bounds = load_boundaries(spec_bounds, float(manifest["central_meridian_deg"]))
    from .forms_change import read_change_inputs

    statistics = (manifest.get("previous") or {}).get("statistics")
    change_inputs = [p for p in (work.transitions_csv, Path(statistics) if statistics else None) if p and p.exists()]
    if up_to_date([work.reports_dir / "forms.md"],
                  [work.areas_csv, work.manifest, *work.khoanh_dir.glob("*.parquet"), *change_inputs]):
        log.info("forms: up to date")
        return {"forms": pd.read_csv(work.reports_dir / "forms.csv", dtype=str), "units": [], "tables": {}}
    areas = pd.read_csv(work.areas_csv, dtype={"commune_code": str}) if work.areas_csv.exists() else None
    if areas is None:
        raise KiemkeError(f"{work.areas_csv} is missing. Run 'kiemke aggregate --workdir {work.root}' first.")
    khoanh = {p.stem: pd.read_parquet(p, columns=["khoanh_no", "landuse", "owner_type", "area_m2", "uses", "flag"])
              for p in sorted(work.khoanh_dir.glob("*.parquet"))}
    units = build_units(sorted(set(areas["commune_code"]) | set(khoanh)), bounds,
                        manifest["province"], manifest["province_code"])
    change = read_change_inputs(work.transitions_csv, manifest)
    if change is not None:
        from .change import dominant_previous

        for code, frame in khoanh.items():  # the khoanh list's "kỳ trước" column
            if work.change(code).exists():
                pieces = pd.read_parquet(work.change(code), columns=["khoanh_no", "previous_id", "from_leaf", "area_m2"])
                khoanh[code] = frame.assign(landuse_previous=frame["khoanh_no"].map(dominant_previous(pieces)))
    tables = compute_forms(areas, units, template, khoanh, change)
    date = pd.Timestamp(manifest["reference_date"]).strftime("%d/%m/%Y")
    decimals = int(template.regime.get("decimals", 2))
    by_key = {u.key: u for u in units}
    written = []
    inputs_of = {u.key: [work.khoanh(c) for c in u.communes] + [work.manifest, *change_inputs]
                 + [work.change(c) for c in u.communes if change is not None and work.change(c).exists()]
                 for u in units}
    for (form_id, key), table in tqdm(sorted(tables.items()), desc="forms", unit="form"):
        spec, unit = template.form(form_id), by_key[key]
        if change is not None:
            years = {"year": change.year, "previous": change.previous_year}
            spec = replace(spec, title=spec.title.format(**years), total_header=spec.total_header.format(**years))
        folder = work.root / "forms" / unit.level / unit.code
        if up_to_date([folder / f"{spec.file}.xlsx", folder / f"{spec.file}.csv"], inputs_of[key]):
            written.append({"form": spec.number, "level": unit.level, "unit": unit.code, "name": unit.name,
                            "xlsx": str(folder / f"{spec.file}.xlsx")})
            continue
        if spec.kind == "by_owner":
            columns = template.columns(spec.column_set)
            headers, numbers = owner_headers(spec, columns, template)
            numeric = value_columns(table)
            users = [c.header for c in columns if c.block == "users"]
            managers = [c.header for c in columns if c.block == "managers"]
            labels = [spec.total_header, "Tổng số đối tượng sử dụng", *users, "Tổng số đối tượng quản lý", *managers]
        elif spec.kind == "by_unit":
            headers, numbers = unit_headers(spec, unit)
            numeric = value_columns(table)
            labels = [spec.total_header, *[c.name for c in unit.children]]
        elif spec.kind == "change":
            headers, numbers, labels = change_headers(spec, change)
            numeric = value_columns(table)
        elif spec.kind == "transition":
            codes = [c.removeprefix("to_") for c in table.columns if c.startswith("to_")]
            headers, numbers, labels = matrix_headers(codes, change)
            numeric = value_columns(table)
        else:
            headers, numbers = KHOANH_HEADERS, [f"({k})" for k in range(1, 10)]
            numeric = list(table.columns)
            labels = ["Thứ tự khoanh đất", "Diện tích (m²)", "Mã loại đất hiện trạng", "Mã loại đất kỳ trước",
                      "Mã loại đất sử dụng kết hợp", "Mã đối tượng hiện trạng", "Mã đối tượng kỳ trước",
                      "Mã khu vực tổng hợp", "Ghi chú"]
        notes = sheet_notes(spec, template, numbers, change)
        write_xlsx(folder / f"{spec.file}.xlsx", spec=spec, template=template, unit=unit, table=table,
                   headers=headers, numbers=numbers, value_columns=numeric, notes=notes, date=date,
                   decimals=decimals)
        write_form_csv(folder / f"{spec.file}.csv", table, spec, numbers, numeric, labels, decimals=decimals)
        written.append({"form": spec.number, "level": unit.level, "unit": unit.code, "name": unit.name,
                        "xlsx": str(folder / f"{spec.file}.xlsx")})
    listing = pd.DataFrame(written)
    from .report import markdown_table

    write_csv(work.reports_dir / "forms.csv", listing)
    write_text(work.reports_dir / "forms.md", "\n".join([
        f"# Forms ({template.regime['name']})", "",
        f"{len(listing)} forms for {sum(u.level == 'xa' for u in units)} communes, "
        f"{sum(u.level == 'huyen' for u in units)} districts and the province; consistency checks passed "
        "(01 total = 1+2+3; 02 and 03 = the rows of 01; 04 = Σ sub-units = 01; district = Σ communes; "
        "province = Σ districts).", "",
        markdown_table(listing), ""]))
    log.info("forms: %d written under %s", len(listing), work.root / "forms")
    return {"forms": listing, "units": units, "tables": tables}
