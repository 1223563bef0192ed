"""The GeoPackage (1.2, so QGIS 3.22 / GDAL 3.6 open it without warnings):
parcels (thua_dat), khoanh đất (khoanh_dat), commune/district/province
boundaries, every QA layer, the area tables behind the forms and, when a
previous inventory was compared, the changed areas (bien_dong, styled by the
new use) and the transition table (chu_chuyen); Vietnamese titles and
descriptions in ``gpkg_contents``; spatial indexes; default styles (QML + SLD)
in ``layer_styles``.

Layers are streamed a commune at a time (one Arrow stream per layer), so the
package of a whole country holds one commune's parcels in memory, not all."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from ..ingest.assemble import review_book
from ..ingest.corrections import officer_notes, parcel_keys
from ..ingest.review import review_frame, review_inputs
from ..io import read_columns, read_geoparquet, read_parquet_table
from ..messages import vi
from ..qa import LAYER_TITLES
from ..qa.between_communes import LAYER_TITLE as OVERLAPS_TITLE
from ..workdir import RunManifest, WorkDir
from .styles import LayerStyle, boundary_style, landuse_style, qa_style, review_style


@dataclass(frozen=True)
class Part:
    """A chunk of a layer's rows (mostly a commune's file), read when written
    (None: no rows). ``sources``: the files it is read from, by which a
    GeoPackage written before is known to hold it as it is now; None for rows
    made in memory, which are written anew every time."""

    read: Callable[[], pd.DataFrame | pa.Table | None]
    key: str = ""
    sources: tuple[Path, ...] | None = None


@dataclass(frozen=True)
class Rows:
    """A layer's rows, in parts read one at a time when written, and the
    columns and types of the whole layer when parts differ (parcel files keep
    their source's extra columns)."""

    parts: tuple[Part, ...]
    schema: pa.Schema | None = None  # None: the first part's


@dataclass(frozen=True)
class GpkgLayer:
    """A layer of the GeoPackage: name, Vietnamese title and description, its
    rows, style; once written, its columns and extent."""

    name: str
    title: str
    description: str
    rows: Rows
    spatial: bool
    style: LayerStyle | None = None
    group: str | None = None  # the QGIS project's group, when not the one its name gives
    optional: bool = False  # left out of the GeoPackage when it has no rows
    columns: tuple[str, ...] = ()
    bounds: tuple[float, float, float, float] | None = None


def whole(frame: pd.DataFrame) -> Rows:
    """A frame already in memory, as one part."""
    return Rows((Part(lambda: frame),))


def per_file(paths: list[Path], prepare: Callable[[gpd.GeoDataFrame], pd.DataFrame] | None = None, *,
             read: Callable[[Path], pa.Table] = read_parquet_table) -> Rows:
    """One part per GeoParquet file (a commune), read when written; the
    files' columns together, read as Arrow (``read``) with their WKB untouched,
    unless ``prepare`` makes its own from the GeoDataFrame."""
    if prepare is None:
        return Rows(tuple(Part(partial(read, p), part_key(p), (p,)) for p in paths), files_schema(paths))
    return Rows(tuple(Part(partial(prepared, prepare, p), part_key(p), (p,)) for p in with_rows(paths)))


def part_key(path: Path) -> str:
    """A file's part by the file's folder and name (``qa/06253/overlaps.parquet``
    → ``06253/overlaps.parquet``): the same when the work folder is moved."""
    return f"{path.parent.name}/{path.name}"


def prepared(prepare: Callable[[gpd.GeoDataFrame], pd.DataFrame], path: Path) -> pd.DataFrame:
    """A GeoParquet file's rows as ``prepare`` makes them from its GeoDataFrame."""
    return prepare(read_geoparquet(path))


def with_rows(paths: list[Path]) -> list[Path]:
    """The files holding rows, by their metadata (QA layers are empty in most
    communes); the first file when none does, for the layer's columns."""
    return [p for p in paths if pq.read_metadata(p).num_rows] or paths[:1]


def shown_rows(path: Path) -> pa.Table:
    """A parcel or khoanh file's rows as the GeoPackage shows them (:data:`SHOWN`)."""
    table = read_parquet_table(path)
    for name, show in SHOWN.items():
        at = table.schema.get_field_index(name)
        if at < 0 or table.column(at).null_count == len(table):
            continue
        values = table.column(at).to_pandas().map(show, na_action="ignore")
        table = table.set_column(at, table.schema.field(at), pa.array(values, type=table.schema.field(at).type))
    return table


def uses_to_tenth(uses: str) -> str:
    """A compound code's m² of each purpose (JSON) to 0.1 m², as the cadastre records an area."""
    return json.dumps({code: round(m2, 1) for code, m2 in json.loads(uses).items()})


#: How the GeoPackage shows a column kept for the pipeline's own use: the flags
#: in the officer's words (the parcel contract keeps them in English), each purpose's m² to 0.1 m².
SHOWN: dict[str, Callable[[str], str]] = {"flags": vi, "uses": uses_to_tenth}


def files_schema(paths: list[Path]) -> pa.Schema | None:
    """Every column of the files in order of appearance, with a type fitting
    all (as ``pd.concat`` unites them); geometry as WKB; a column no file fills, text."""
    if not paths:
        return None
    schema = pa.unify_schemas([pq.read_schema(p).remove_metadata() for p in paths], promote_options="permissive")
    return pa.schema([field.with_type(pa.binary()) if field.name == "geometry" else
                      field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in schema])


def collect_layers(work: WorkDir, manifest: RunManifest) -> list[GpkgLayer]:
    """Every layer and table of the GeoPackage, in drawing order (top first)."""
    target = manifest.crs
    bounds = manifest.load_boundaries()
    layers: list[GpkgLayer] = []
    for name in ("overlaps", "duplicates", "gaps", "slivers", "crossings", "invalid"):
        layers.append(GpkgLayer(
            f"qa_{name}", f"QA: {LAYER_TITLES[name]}",
            "Vấn đề topo do kiemke phát hiện; X = tọa độ Bắc, Y = tọa độ Đông (VN-2000).",
            per_file(sorted(work.qa_dir.glob(f"*/{name}.parquet")),
                     lambda f: f.set_geometry(shapely.make_valid(f.geometry.values))),
            True, qa_style(f"qa_{name}", name, LAYER_TITLES[name]), optional=True))
    if work.commune_overlaps.exists():  # written by the aggregate stage once there are khoanh
        layers.insert(0, GpkgLayer(
            "qa_commune_overlaps", f"QA: {OVERLAPS_TITLE}",
            "Phần khoanh đất của hai xã chồng lên nhau: được tính trong diện tích của cả hai xã (xem "
            "reports/aggregate.md); X = tọa độ Bắc, Y = tọa độ Đông (VN-2000).",
            per_file([work.commune_overlaps]), True,
            qa_style("qa_commune_overlaps", "commune_overlaps", OVERLAPS_TITLE, label="communes"), optional=True))
    if len(bounds):
        province = gpd.GeoDataFrame({"ten": [manifest.province.title(manifest.reference_date)],
                                     "ma": [manifest.province.gso_code]},
                                    geometry=[shapely.union_all(bounds.geometry.values)], crs=target)
        districts = bounds.dissolve("district_code", as_index=False)[["district_code", "district_name", "geometry"]]
        for name, frame, level, title in (
            ("ranh_gioi_tinh", province, "tinh", "Ranh giới tỉnh"),
            *([("ranh_gioi_huyen", districts, "huyen", "Ranh giới huyện")] if "huyen" in manifest.levels else []),
            ("ranh_gioi_xa", bounds, "xa", "Ranh giới xã"),
        ):
            layers.append(GpkgLayer(name, title, f"{title} (từ tệp ranh giới của cấu hình).", whole(frame), True,
                                    boundary_style(name, level, title)))
    else:  # no boundary file: each commune's extent as its khoanh and gaps outline it (the sheets' frame too)
        outlines = work.read_outlines(p.stem for p in work.khoanh_files())
        if len(outlines):
            names = manifest.commune_names()  # from [[communes]], when the config gives them
            codes = outlines["commune_code"].astype(str)
            outlines = gpd.GeoDataFrame({"commune_code": outlines["commune_code"],
                                         "commune_name": [names.get(c, f"Xã {c}") for c in codes]},
                                        geometry=outlines.geometry.values, crs=target)
            layers.append(GpkgLayer(OUTLINE_LAYER, "Phạm vi xã (theo khoanh đất)", OUTLINE_NOTE, whole(outlines),
                                    True, boundary_style(OUTLINE_LAYER, "xa", "Phạm vi xã (theo khoanh đất)")))
    codes = landuse_codes([*work.khoanh_files(), *work.parcel_files()])
    layers.append(GpkgLayer("khoanh_dat", f"Khoanh đất hiện trạng năm {manifest.year}",
                            "Khoanh đất: các thửa liền kề cùng mã loại đất và mã đối tượng sử dụng, quản lý.",
                            per_file(work.khoanh_files(), read=shown_rows), True,
                            landuse_style("khoanh_dat", codes, "Khoanh đất theo mã loại đất")))
    layers.append(GpkgLayer("thua_dat", "Thửa đất", "Thửa đất sau chuẩn hóa (kiemke ingest), hệ VN-2000 TM-3.",
                            per_file(work.parcel_files(), read=shown_rows), True,
                            landuse_style("thua_dat", codes, "Thửa đất theo mã loại đất")))
    layers += change_layers(work, manifest)
    layers = new_unit_layers(work, manifest, codes) + [review_layer(work)] + layers
    areas = pd.read_csv(work.areas_csv, dtype={"commune_code": str})
    summary = pd.read_csv(work.summary_csv, dtype={"commune_code": str})
    layers.append(GpkgLayer("dien_tich_theo_doi_tuong", "Diện tích theo mã loại đất và đối tượng (m²)",
                            "Bảng gốc của các biểu thống kê: xã × mã loại đất × mã đối tượng.", whole(areas), False))
    layers.append(GpkgLayer("dien_tich_theo_loai_dat", "Diện tích theo mã loại đất (cả mã cấp trên)",
                            "Diện tích từng mã trong cây mã loại đất của mỗi xã; TONG = NNP + PNN + CSD.",
                            whole(summary), False))
    return layers


#: Without a boundary file, the communes' extents stand in for their boundaries (the layouts' atlas).
OUTLINE_LAYER = "pham_vi_xa"
OUTLINE_NOTE = ("Không có tệp ranh giới xã trong cấu hình: phạm vi mỗi xã là hợp các khoanh đất và khoảng hở "
                "của xã, đã khép các khe hẹp dưới 40 m giữa các thửa (đường, kênh không có thửa) và lấp các lỗ "
                "bên trong; không phải đường địa giới hành chính.")


def landuse_codes(paths: list[Path]) -> list[str]:
    """The land-use codes present in parcel or khoanh files (their ``landuse`` column only)."""
    return sorted(read_columns(paths, ["landuse"])["landuse"].dropna().unique())


NEW_UNITS_GROUP = "Đơn vị hành chính {label}"


def new_unit_layers(work: WorkDir, manifest: RunManifest, codes: list[str]) -> list[GpkgLayer]:
    """Per ``[units]`` regrouped: the new units' boundaries and the khoanh cut
    by them (``ranh_gioi_xa_<label>``, ``khoanh_dat_<label>``), styled like the others."""
    layers = []
    for spec in manifest.units:
        derived = WorkDir(work.root / f"units_{spec.label}")
        if not derived.manifest.exists() or not derived.khoanh_files():
            continue
        group = NEW_UNITS_GROUP.format(label=spec.label)
        bounds = derived.read_manifest().load_boundaries()[["commune_code", "commune_name", "geometry"]]
        title = f"Ranh giới xã ({spec.label})"
        layers += [
            GpkgLayer(f"ranh_gioi_xa_{spec.label}", title, f"Đơn vị hành chính cấp xã {spec.label} ({spec.path.name}).",
                      whole(bounds), True, boundary_style(f"ranh_gioi_xa_{spec.label}", "xa", title), group),
            GpkgLayer(f"khoanh_dat_{spec.label}", f"Khoanh đất năm {manifest.year} theo đơn vị {spec.label}",
                      f"Khoanh đất cắt theo ranh giới đơn vị hành chính {spec.label} (mã xã là mã đơn vị mới; "
                      "old_commune_code là mã xã cũ).", per_file(derived.khoanh_files(), read=shown_rows), True,
                      landuse_style(f"khoanh_dat_{spec.label}", codes, f"Khoanh đất theo đơn vị {spec.label}"), group),
        ]
    return layers


def review_layer(work: WorkDir) -> GpkgLayer:
    """The parcels the officer should look at (the review workbooks' rows with
    their geometry, numbered as in each commune's workbook): quarantined,
    inferred object, refined or corrected code, with the notes the officer
    wrote in the workbook (a note saved there rewrites its commune's rows)."""
    communes = sorted({p.stem for p in [*work.parcel_files(), *work.quarantine_dir.glob("*.parquet")]})

    def commune_rows(code: str) -> pd.DataFrame | None:
        inputs = review_inputs(work.parcels(code), work.quarantine(code))
        if inputs is None:
            return None
        frame = review_frame(*inputs)
        notes = officer_notes(review_book(work, code))
        return frame.assign(note=[notes.get(key, "") for key in parcel_keys(frame)])

    parts = tuple(Part(partial(commune_rows, code), code,
                       (work.parcels(code), work.quarantine(code), work.manifest, review_book(work, code)))
                  for code in communes)
    return GpkgLayer("review", "Thửa đất cần rà soát",
                     "Thửa bị cách ly, thửa có đối tượng suy ra hoặc mã chuyển theo quy tắc, thửa đã sửa theo cán bộ "
                     "(như trong reports/review/*.xlsx); điểm, đường bị cách ly (nhãn thửa ngoài vùng, đường ranh "
                     "hở) vẽ thành vùng rộng 1,5 m quanh nó.", Rows(parts), True,
                     review_style("review", "Thửa đất cần rà soát"), optional=True)


def is_change(pieces: pd.DataFrame) -> pd.Series:
    """The overlay pieces whose use changed, inside both maps."""
    return pieces["changed"] & ~pieces["to_leaf"].isin(["NGOAI", "KHOANGHO"])


def change_layers(work: WorkDir, manifest: RunManifest) -> list[GpkgLayer]:
    """The areas whose use changed since the previous inventory (styled by the
    new use) and the transition table, when a previous inventory was compared."""
    files = sorted(work.change_dir.glob("*.parquet"))
    if manifest.previous is None or not files or not work.transitions_csv.exists():
        return []
    before, now = manifest.previous.year, manifest.year

    def changed(pieces: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        kept = pieces[is_change(pieces)]
        return gpd.GeoDataFrame({
            "commune_code": kept["commune_code"], "khoanh_no": kept["khoanh_no"],
            f"ma_{before}": kept["from_code"], f"ma_{now}": kept["to_code"], "landuse": kept["to_leaf"],
            "area_m2": kept["area_m2"].round(2),
        }, geometry=kept.geometry.values)

    uses = read_columns(files, ["changed", "to_leaf"])
    codes = sorted(uses["to_leaf"][is_change(uses)].unique())
    title = f"Biến động sử dụng đất {before} - {now}"
    transitions = pd.read_csv(work.transitions_csv, dtype={"commune_code": str})
    return [
        GpkgLayer("bien_dong", title, f"Phần diện tích có mục đích sử dụng năm {now} khác năm {before} "
                  "(chồng xếp chính xác); tô màu theo mục đích mới.", per_file(files, changed), True,
                  landuse_style("bien_dong", codes, f"{title} theo mục đích mới")),
        GpkgLayer("chu_chuyen", f"Chu chuyển đất đai {before} - {now} (m²)",
                  "Xã × mã năm trước × mã năm nay; NGOAI = ngoài bản đồ năm kia, KHOANGHO = khoảng hở.",
                  whole(transitions), False),
    ]
