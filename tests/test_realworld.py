"""Real cadastral exports (``../shared/data/realworld``, not shipped): a config
that gives only the province and the commune code yields a complete
inventory (issue 14). Skips where ``../shared`` is absent."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from pipeline import crs as vn
from pipeline.cli import cli
from pipeline.messages import untranslated
from pipeline.reference import province
from tests.conftest import REPO
from tests.helpers import ingest_messages

REALWORLD = REPO.parent / "shared" / "data" / "realworld"
#: folder → (province as an officer types it, a commune code as the officer gives it)
EXPORTS = {"tanbien_tayninh": ("Tây Ninh", "25480"), "phuoctrung_baria": ("Bà Rịa - Vũng Tàu", "26560")}


def _union_m2(folder: Path, province_name: str) -> float:
    """The ground the export covers, counted once (its layers overlap and repeat parcels)."""
    meridian = province(province_name).central_meridian_deg
    layers = [gpd.read_file(f) for f in sorted(folder.glob("*.geojson"))]
    geoms = [vn.reproject(np.asarray(layer.geometry.values), layer.crs, meridian) for layer in layers]
    return float(shapely.union_all(np.concatenate(geoms)).area)


@pytest.fixture(scope="module", params=sorted(EXPORTS))
def real_run(request, tmp_path_factory):
    if not REALWORLD.exists():
        pytest.skip(f"{REALWORLD} is absent: the real exports are not shipped with kiemke")
    name = request.param
    province_name, code = EXPORTS[name]
    work = tmp_path_factory.mktemp(name)
    config = work / "inventory.toml"
    config.write_text(f'[inventory]\nprovince = "{province_name}"\ninput = "{(REALWORLD / name).as_posix()}"\n'
                      f'workdir = "{(work / "out").as_posix()}"\n[[sources]]\npath = "*"\ncommune_code = "{code}"\n',
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["inventory", "--config", str(config), "--scheduler", "sync"])
    return name, work / "out", result


@pytest.mark.slow
def test_a_real_export_gives_a_complete_inventory(real_run):
    name, work, result = real_run
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output
    report = json.loads((work / "reports/ingest.json").read_text(encoding="utf-8"))
    assert report["area_in_m2"] == pytest.approx(report["area_out_m2"] + report["area_quarantined_m2"], rel=1e-9)
    areas = pd.read_csv(work / "stats/areas.csv", dtype={"commune_code": str})
    covered = _union_m2(REALWORLD / name, EXPORTS[name][0])
    assert areas["area_m2"].sum() >= 0.95 * covered, (areas["area_m2"].sum(), covered)
    public = areas[areas["landuse"].isin(["DGT", "SON", "DTL"])]
    assert len(public) and not (public["owner_type"] == "GDC").any()  # roads and rivers are not a household's
    assert (work / "forms/xa").exists() and list((work / "maps").glob("xa_*.pdf"))
    assert not untranslated(ingest_messages(work))  # every message reaches the officer in Vietnamese
    if name == "tanbien_tayninh":  # owner names typed without a space are Vietnamese, typos are told as typos
        assert "NguyễnThị" not in result.output and "(có thể gõ sai)" in result.output


@pytest.mark.slow
def test_the_review_workbook_lists_every_quarantined_and_inferred_parcel(real_run):
    name, work, result = real_run
    assert result.exit_code == 0
    parcels = pd.concat([gpd.read_parquet(p) for p in (work / "parcels").glob("*.parquet")])
    quarantine = [gpd.read_parquet(p) for p in (work / "quarantine").glob("*.parquet")]
    flagged = parcels[parcels["refined"].notna() | parcels["owner_source"].ne("file")]
    expected = {(Path(f).name, str(i)) for f, i in zip(flagged["source_file"], flagged["source_fid"], strict=True)}
    for frame in quarantine:
        expected |= {(Path(f).name, str(i)) for f, i in zip(frame["source_file"], frame["source_fid"], strict=True)}
    listed = set()
    for book in (work / "reports/review").glob("*.xlsx"):
        sheet = openpyxl.load_workbook(book, read_only=True).worksheets[0]
        rows = list(sheet.iter_rows(min_row=4, values_only=True))
        header = list(rows[0])
        at_file, at_fid = header.index("Tệp nguồn"), header.index("FID")
        listed |= {(Path(str(r[at_file])).name, str(r[at_fid])) for r in rows[1:] if r[at_fid] is not None}
    assert expected and expected <= listed
