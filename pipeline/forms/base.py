"""What every form kind shares: the inputs of the forms, the description of a
printed sheet, and the registry of form kinds.

A kind (``by_owner``, ``by_unit``, ``khoanh_list``, ``change``, ``transition``)
is a module that computes its tables for every unit and says how one table is
printed; the stage and the writer never branch on the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import pandas as pd

from ..regime import FormSpec, Template
from ..report import vn_number
from ..units import Unit
from .change_inputs import ChangeInputs


@dataclass(frozen=True)
class Header:
    """One header cell: text, its first row/column (0-based in the header), span."""

    text: str
    row: int
    col: int
    rows: int = 1
    cols: int = 1


@dataclass(frozen=True)
class FormInputs:
    """Everything the forms are computed from."""

    areas: pd.DataFrame  # stats/areas.csv: commune_code, landuse, owner_type, area_m2
    units: list[Unit]
    template: Template
    khoanh: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # commune → its khoanh (the khoanh list)
    change: ChangeInputs | None = None  # the comparison with the previous inventory
    owner_sources: pd.DataFrame | None = None  # stats/owner_sources.csv: how each object was found
    holders: pd.DataFrame | None = None  # stats/holders.csv: how many users/managers (Biểu 02/TKKK)
    work_root: str = ""  # the work directory (the change list reads the parcels and change pieces there)

    @property
    def total_label(self) -> str:
        return str(self.template.regime["total_row"])

    def units_of(self, spec: FormSpec) -> list[Unit]:
        return [u for u in self.units if u.level in spec.levels]

    @cached_property
    def owner_source_areas(self) -> dict[tuple[str, str], tuple[float, float]]:
        """(commune, row group) → (area, of it the area whose object was inferred), m²."""
        sources = self.owner_sources
        if sources is None or sources.empty:
            return {}
        inferred = sources["area_m2"].where(~sources["owner_source"].isin(["file", "correction"]), 0.0)
        sums = pd.DataFrame({"commune_code": sources["commune_code"].astype(str), "group": sources["group"],
                             "area": sources["area_m2"], "inferred": inferred}).groupby(
            ["commune_code", "group"], sort=False)[["area", "inferred"]].sum()
        return {key: (float(a), float(i)) for key, a, i in zip(sums.index, sums["area"], sums["inferred"],
                                                              strict=True)}


@dataclass(frozen=True)
class Sheet:
    """How one table is printed: header cells, the numbered row, the value
    columns with their CSV labels, column widths, the notes printed under it
    (what a district office must know of the figures), and the provenance of
    the layout (what the circular confirms, what is reconstructed: on the
    workbook's "Nguồn mẫu biểu" sheet and in reports/forms.md, never printed)."""

    headers: list[Header]
    numbers: list[str]
    value_columns: list[str]
    labels: list[str]
    widths: list[float]
    notes: list[str]
    row_form: bool = True  # rows are the code tree (stt, name, code); False: a plain list (the khoanh list)
    provenance: list[str] = field(default_factory=list)
    wide: bool = False  # too wide for one page at a readable size: printed over several pages, headers repeated
    scale: float = 100.0  # a printed figure is the table's value / scale (centi-hectares → ha)
    decimals: int | None = None  # its decimals (None: the regime's)
    unit_line: str = ""  # the unit of the figures when not the regime's ("Đơn vị tính: người")


class FormKind(Protocol):
    """A kind of form: computes its tables, and says how one is printed."""

    def tables(self, spec: FormSpec, inputs: FormInputs) -> dict[str, pd.DataFrame]:
        """Unit key (``xa/06253``) → the form's table for that unit."""
        ...

    def sheet(self, spec: FormSpec, unit: Unit, table: pd.DataFrame, inputs: FormInputs) -> Sheet:
        """The printed layout of one unit's table."""
        ...


KINDS: dict[str, FormKind] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a form kind under ``name`` (the ``kind`` of a template's form)."""
    def add(cls: type) -> type:
        KINDS[name] = cls()
        return cls
    return add


def kind_of(spec: FormSpec) -> FormKind:
    """The kind a form spec names, or an error listing the kinds there are."""
    try:
        return KINDS[spec.kind]
    except KeyError:
        raise KeyError(f"form {spec.id}: kind {spec.kind!r} is unknown; kinds: {sorted(KINDS)}") from None


#: The template's confidence marks, as the provenance sheet prints them.
CONFIDENCE = {"confirmed": "đã xác nhận", "inferred": "suy luận"}


def common_notes(spec: FormSpec, template: Template) -> list[str]:
    """Provenance of every form: how confirmed its title and layout are."""
    return [f"Mẫu biểu: {spec.number} — {spec.title_confidence}."]


def inferred_note(spec: FormSpec, unit: Unit, inputs: FormInputs) -> list[str]:
    """The share of the form's area whose user/manager object kiemke inferred
    (the file had none), when there is any."""
    areas = inputs.owner_source_areas
    found = [areas[(code, group)] for code in unit.communes for group in spec.row_roots if (code, group) in areas]
    total, inferred = sum(a for a, _ in found), sum(i for _, i in found)
    if total <= 0 or inferred <= 0:
        return []
    share, hectares = vn_number(100 * inferred / total, 1), vn_number(inferred / 1e4)
    return [f"Ghi chú: đối tượng sử dụng, quản lý của {share} % diện tích ({hectares} ha) không có trong dữ liệu "
            "gốc, được xác định theo quy tắc (tên chủ sử dụng, loại đất hoặc cấu hình); danh sách từng thửa để "
            "rà soát: reports/review/."]


ROUNDING_NOTE = ("Số liệu tính từ diện tích (m²) của các khoanh đất trên bản đồ, hệ VN-2000. Tổng diện tích tự "
                 "nhiên của mỗi xã được làm tròn một lần đến 0,01 ha; các ô chi tiết (mã loại đất × đối tượng) "
                 "được phân bổ theo phần dư lớn nhất để cộng đúng bằng tổng đó; các dòng, cột tổng và số liệu "
                 "cấp huyện, tỉnh là tổng của các ô đã làm tròn.")


def tail_notes(spec: FormSpec, template: Template) -> list[str]:
    """The rounding note and, when the form has them, the observation rows' note."""
    notes = [ROUNDING_NOTE]
    if spec.observation_roots:
        notes.append(f"Nhóm {', '.join(spec.observation_roots)}: {template.regime['observation_note']}.")
    return notes
