"""Shared fixtures: the bundled sample and tiny inline parcel files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "raw" / "sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    assert (SAMPLE / "README.md").exists(), "the bundled sample is missing: run 'make sample'"
    return SAMPLE


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, sample_dir) -> Path:
    """The whole inventory run once on the bundled sample; returns the workdir."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    work = tmp_path_factory.mktemp("sample_work")
    config = (REPO / "inventory.toml").read_text(encoding="utf-8")
    config = config.replace('input = "data/raw/sample"', f'input = "{sample_dir.as_posix()}"')
    config = config.replace('workdir = "data/processed"', f'workdir = "{work.as_posix()}"')
    config = config.replace('path = "data/raw/sample/boundaries', f'path = "{sample_dir.as_posix()}/boundaries')
    path = work / "inventory.toml"
    path.write_text(config, encoding="utf-8")
    result = CliRunner().invoke(cli, ["inventory", "--config", str(path)])
    assert result.exit_code == 0, result.output
    return work
