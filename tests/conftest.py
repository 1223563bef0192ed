"""Shared fixtures: the bundled sample, its whole inventory (built once per
session), and the external programs the output tests use.

Tests that need the whole inventory or an external program are marked
``slow``: ``make test-fast`` runs the others (inline geometry, tiny files).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "raw" / "sample"
#: Fixtures that make a test slow: the whole sample run through stages, LibreOffice, QGIS.
SLOW_FIXTURES = {"sample_raw", "sample_run", "run_2024", "soffice", "qgis_python"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as ``slow`` every test that uses a slow fixture (directly or through another)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    assert (SAMPLE / "README.md").exists(), "the bundled sample is missing: run 'make sample'"
    return SAMPLE


def sample_config(raw: Path, work: Path, extra: str = "") -> Path:
    """inventory.toml of the bundled sample, pointed at ``raw`` and ``work``."""
    config = (REPO / "inventory.toml").read_text(encoding="utf-8")
    config = config.replace('input = "data/raw/sample"', f'input = "{raw.as_posix()}"')
    config = config.replace('workdir = "data/processed"', f'workdir = "{work.as_posix()}"')
    config = config.replace('"data/raw/sample/', f'"{raw.as_posix()}/')  # boundaries, the 2014 layer, 2018 stats
    config = config.replace('"pipeline/data/', f'"{(REPO / "pipeline/data").as_posix()}/')  # the context boundaries
    work.mkdir(parents=True, exist_ok=True)
    path = work / "inventory.toml"
    path.write_text(config + extra, encoding="utf-8")
    return path


def file_hashes(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory, sample_dir) -> Path:
    """A copy of the bundled sample (tests may touch it; the repository stays as it is)."""
    import shutil

    raw = tmp_path_factory.mktemp("sample_raw") / "raw"
    shutil.copytree(sample_dir, raw)
    return raw


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, sample_raw) -> Path:
    """The whole inventory run once on the bundled sample; returns the workdir.
    The raw files' hashes before the run are kept in ``raw_hashes.json``."""
    import json

    from click.testing import CliRunner

    from pipeline.cli import cli

    work = tmp_path_factory.mktemp("sample_work")
    before = file_hashes(sample_raw)
    path = sample_config(sample_raw, work)
    result = CliRunner().invoke(cli, ["inventory", "--config", str(path)])
    assert result.exit_code == 0, result.output
    (work / "raw_hashes.json").write_text(json.dumps(before), encoding="utf-8")
    (work / "console.txt").write_text(result.output, encoding="utf-8")
    return work


@pytest.fixture(scope="session")
def run_2024(tmp_path_factory, sample_run) -> Path:
    """``inventory_2024.toml`` run once (the bundled 2024 sample, Circular 08/2024, on the communes of
    2025), its [previous] the 2019 run's regrouped khoanh; returns the workdir."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    work = tmp_path_factory.mktemp("work_2024")
    config = (REPO / "inventory_2024.toml").read_text(encoding="utf-8")
    config = config.replace('"data/raw/sample_2024', f'"{(REPO / "data/raw/sample_2024").as_posix()}')
    config = config.replace('workdir = "data/processed_2024"', f'workdir = "{work.as_posix()}"')
    config = config.replace('"data/processed/units_2025/', f'"{(sample_run / "units_2025").as_posix()}/')
    path = work / "inventory_2024.toml"
    path.write_text(config, encoding="utf-8")
    result = CliRunner().invoke(cli, ["inventory", "--config", str(path)])
    assert result.exit_code == 0, result.output
    return work


@pytest.fixture(scope="session")
def soffice() -> str:
    """LibreOffice (``make system-packages`` installs it), or the test skips saying so."""
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None:
        pytest.skip("LibreOffice is not installed: run 'make system-packages' (as root) to print the forms")
    return path


@pytest.fixture(scope="session")
def qgis_python() -> str:
    """A python3 with QGIS's own API (``make system-packages`` installs it), or the test skips saying so."""
    probe = ["/usr/bin/python3", "-c", "import qgis.core"]
    if not Path("/usr/bin/python3").exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("QGIS's Python API is not installed: run 'make system-packages' (as root) to open the "
                    "GeoPackage with QGIS")
    return "/usr/bin/python3"
