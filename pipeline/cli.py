"""The ``kiemke`` command line: thin wrappers around the stage cores.

Every command exits 0 on success and, on bad input, prints one paragraph
naming the file, the feature and the fix, and exits non-zero (no traceback;
set ``KIEMKE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import sys
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from .aggregate import run_aggregate
from .change import run_change
from .config import DEFAULT_WORKDIR, Settings, SourceOverride, load_settings
from .console import officer_console, show_version, speak_vietnamese, write_utf8
from .errors import KiemkeError, UnknownProvinceError, refused_by_system
from .forms import run_forms
from .ingest import run_ingest
from .inventory import outputs_summary, run_inventory
from .khoanh import run_khoanh
from .maps import run_maps
from .messages import officer_message
from .package import run_package
from .parallel import LOCAL_CLUSTER_FROM
from .qa import run_qa
from .reference import province as find_province
from .regroup import run_regroup
from .report import vn_number
from .runlock import one_run_at_a_time
from .sample import UNITS_2025, generate_sample, write_sample_2024
from .workdir import WorkDir

log = logging.getLogger("pipeline")

if multiprocessing.parent_process() is not None:  # a local worker, which imports this as its parent's __main__ did
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every process of the terminal: the parent stops it

workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
    show_default=True, help="Work directory holding every stage's outputs.")


scheduler_option = click.option(
    "--scheduler", default="sync", show_default=True,
    help="Where per-file/per-commune work runs: 'sync' (this process), 'local' (a local Dask cluster, "
         "one worker per core) or a Dask scheduler address tcp://HOST:8786.")


def _scheduler(value: str | None) -> str | None:
    return None if value == "local" else value


def reports_errors(func):
    """Turn kiemke's errors, and what the system refused (a full disk, a file
    open in Excel), into a click error: one paragraph, exit code 1."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KiemkeError as exc:
            raise click.ClickException(officer_message(str(exc))) from None
        except Exception as exc:
            refused = refused_by_system(exc, _output_folder(kwargs))
            if refused is None:
                raise
            raise click.ClickException(officer_message(str(refused))) from None
    return wrapper


def alone_in_workdir(func):
    """Run a stage command as the only run in its work directory (as
    ``kiemke inventory`` is): while another holds it, stop at once."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with one_run_at_a_time(WorkDir(_output_folder(kwargs)), create=False):
            return func(*args, **kwargs)
    return wrapper


def _output_folder(options: dict) -> Path:
    """The folder a command writes to: its work directory (the config's unless
    ``--workdir`` is given), or the sample's folder."""
    given = click.get_current_context().get_parameter_source("workdir")
    if options.get("config_path") is not None and given in (None, ParameterSource.DEFAULT):
        with suppress(Exception):  # asked while another error is told: never one of its own
            return Path(load_settings(options["config_path"]).workdir)
    return Path(options.get("workdir") or options.get("out") or ".")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show_version)
@click.option("-v", "--verbose", count=True,
              help="The developers' log (English, with the loggers' names) instead of the officer's; -vv for debug.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """kiemke — land inventory (kiểm kê đất đai) under Circular 27/2018 (2019) or 08/2024 (from 2024).

    \b
    Examples:
      kiemke sample --out data/raw/sample
      kiemke ingest data/raw/sample --province "Lạng Sơn" --workdir data/processed
      kiemke qa --workdir data/processed
      kiemke khoanh --workdir data/processed
      kiemke aggregate --workdir data/processed
      kiemke inventory --config inventory.toml
    """
    ctx.with_resource(officer_console(verbose, quiet))


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data/raw/sample"), show_default=True)
@click.option("--out-2024", type=click.Path(file_okay=False, path_type=Path),
              help="The same sample as a 2024 inventory (Circular 08/2024, communes of 1 July 2025); "
                   "default: sample_2024 beside --out.")
@click.option("--seed", type=int, default=2019, show_default=True)
@reports_errors
def sample(out: Path, out_2024: Path | None, seed: int) -> None:
    """Write the bundled synthetic Lạng Sơn sample (deterministic), and the same as a 2024 inventory.

    \b
    Example:
      kiemke sample --out data/raw/sample
    """
    summary = generate_sample(out, seed=seed)
    click.echo(f"Bộ dữ liệu mẫu: {len(summary)} xã, {vn_number(summary['parcels'].sum(), 0)} thửa → {out}")
    out_2024 = out_2024 or out.parent / "sample_2024"  # beside it, not in whatever folder this runs from
    summary = write_sample_2024(out_2024, out / UNITS_2025, seed=seed)
    click.echo(f"Bộ dữ liệu mẫu kỳ 2024: {len(summary)} xã mới, {vn_number(summary['parcels'].sum(), 0)} thửa "
               f"→ {out_2024}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--province", help="Province name or GSO code, e.g. 'Lạng Sơn' or 20.  [required unless the config "
              "gives it]")
@click.option("--commune-code", help="5-digit commune code for files that carry none.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="inventory.toml with per-file overrides (CRS, encoding, commune code); its province and input "
                   "folder unless given here.")
@workdir_option
@scheduler_option
@reports_errors
@alone_in_workdir
def ingest(paths: tuple[Path, ...], province: str | None, commune_code: str | None,
           config_path: Path | None, workdir: Path, scheduler: str) -> None:
    """Read parcel files (files or folders) into the parcel contract.

    Output: parcels/<commune>.parquet in the province's VN-2000 TM-3 CRS,
    quarantine/<commune>.parquet, reports/ingest.json and ingest.md.

    \b
    Example:
      kiemke ingest data/raw/sample --province "lang son" --workdir data/processed
      kiemke ingest --config inventory.toml
    """
    settings = _settings(config_path, province=province, workdir=workdir, commune_code=commune_code)
    inputs = list(paths) or ([settings.input_root] if settings.input_root is not None else [])
    if not inputs:
        raise click.MissingParameter(param_type="argument", param_hint="'PATHS...'")
    work = WorkDir(settings.workdir)
    result = run_ingest(work, inputs, settings, scheduler=_scheduler(scheduler))
    totals = result.totals
    click.echo(
        f"Đã đọc {result.layers_read} tệp: {vn_number(totals['features_out'], 0)} thửa ở {len(result.parcels)} xã, "
        f"{vn_number(totals['features_quarantined'], 0)} thửa cách ly → {work.parcels_dir} "
        f"(báo cáo: {work.report('ingest.md')})"
    )


@cli.command()
@workdir_option
@click.option("--boundaries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Commune boundary file (default: the one in the config given to ingest).")
@scheduler_option
@reports_errors
@alone_in_workdir
def qa(workdir: Path, boundaries: Path | None, scheduler: str) -> None:
    """Topology QA per commune: overlaps, gaps, slivers, invalid, crossings.

    Output: qa/<commune>/<layer>.parquet, reports/qa.md, qa.html, qa.json.

    \b
    Example:
      kiemke qa --workdir data/processed
    """
    work = WorkDir(Path(workdir))
    results = run_qa(work, boundaries, scheduler=_scheduler(scheduler))
    problems = sum(r.problems for r in results)
    click.echo(f"Kiểm tra topo: {len(results)} xã, {vn_number(problems, 0)} vấn đề → {work.report('qa.md')}")


@cli.command()
@workdir_option
@scheduler_option
@reports_errors
@alone_in_workdir
def khoanh(workdir: Path, scheduler: str) -> None:
    """Merge parcels into numbered khoanh đất (same land use and owner type).

    \b
    Example:
      kiemke khoanh --workdir data/processed
    """
    work = WorkDir(Path(workdir))
    written = run_khoanh(work, scheduler=_scheduler(scheduler))
    click.echo(f"Khoanh đất: {len(written)} xã → {work.khoanh_dir}")


@cli.command()
@workdir_option
@click.option("--boundaries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Boundary file for the roll-up (e.g. another boundary set).")
@scheduler_option
@reports_errors
@alone_in_workdir
def forms(workdir: Path, boundaries: Path | None, scheduler: str) -> None:
    """Biểu 01–04/TKĐĐ and the khoanh list, XLSX + CSV, per commune, district, province.

    \b
    Example:
      kiemke forms --workdir data/processed
    """
    work = WorkDir(Path(workdir))
    out = run_forms(work, boundaries, scheduler=_scheduler(scheduler))
    click.echo(f"Biểu: đã lập {len(out['forms'])} biểu → {work.forms_dir}")


@cli.command()
@workdir_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Older form: take the work directory from this inventory.toml.")
@scheduler_option
@reports_errors
@alone_in_workdir
def change(workdir: Path, config_path: Path | None, scheduler: str) -> None:
    """Change since the previous inventory: overlay, transition matrix (chu chuyển).

    The previous inventory is the [previous] section of the config that ingest
    recorded in the work directory. Output: change/<commune>.parquet (pieces),
    stats/transitions.csv, reports/change.md. Biểu 14/TKĐĐ and the change maps
    follow with 'kiemke forms' and 'kiemke maps'.

    \b
    Example:
      kiemke change --workdir data/processed
    """
    if config_path:
        settings = load_settings(config_path)
        if settings.previous is None:
            raise click.ClickException(f"{config_path}: no previous inventory is configured: add a [previous] "
                                       "section with its path (see the bundled inventory.toml).")
        workdir = settings.workdir
    out = run_change(WorkDir(Path(workdir)), scheduler=_scheduler(scheduler))
    click.echo(f"Biến động → {out['transitions']} (báo cáo: {out['report']})")


@cli.command()
@workdir_option
@scheduler_option
@reports_errors
@alone_in_workdir
def regroup(workdir: Path, scheduler: str) -> None:
    """The inventory on new administrative units ([units] of inventory.toml, e.g. the communes of 1 July 2025):
    khoanh cut by the new boundaries, the crosswalk, statistics, forms and maps under units_<label>/.

    \b
    Example:
      kiemke regroup --workdir data/processed
    """
    work = WorkDir(Path(workdir))
    done = run_regroup(work, scheduler=_scheduler(scheduler))
    if not done:
        click.echo("inventory.toml của lần chạy không có mục [units]: không có đơn vị mới để chia lại.")
    for target in done:
        click.echo(f"Đơn vị mới → {target.root} (bảng chuyển đổi trong {target.stats_dir}, báo cáo "
                   f"{target.report('regroup.md')})")


@cli.command()
@workdir_option
@click.option("--scale-step", type=click.IntRange(-1, 1), default=None,
              help="One scale step larger (-1) or smaller (1) than the regulation's (Art. 18(4) exception).")
@click.option("--dpi", type=click.IntRange(50, 600), default=None, help="PNG preview resolution (default 150).")
@scheduler_option
@reports_errors
@alone_in_workdir
def maps(workdir: Path, scale_step: int | None, dpi: int | None, scheduler: str) -> None:
    """Current land-use map sheets (PDF at true scale + PNG) for every commune, district and the province.

    \b
    Example:
      kiemke maps --workdir data/processed
    """
    work = WorkDir(Path(workdir))
    sheets = run_maps(work, scale_step=scale_step, dpi=dpi, scheduler=_scheduler(scheduler))
    click.echo(f"Bản đồ: {sum(1 for s in sheets if s['pdf'])} tờ → {work.maps_dir}")


@cli.command()
@workdir_option
@click.option("--resolution", type=float, default=5.0, show_default=True,
              help="GeoTIFF cell size (m) for communes and districts.")
@click.option("--province-resolution", type=float, default=10.0, show_default=True,
              help="GeoTIFF cell size (m) for the province.")
@scheduler_option
@reports_errors
@alone_in_workdir
def package(workdir: Path, resolution: float, province_resolution: float, scheduler: str) -> None:
    """One GeoPackage with QGIS styles, a QGIS project (.qgz) and GeoTIFFs of current use.

    \b
    Example:
      kiemke package --workdir data/processed
    """
    out = run_package(WorkDir(Path(workdir)), commune_resolution=resolution, province_resolution=province_resolution,
                      scheduler=_scheduler(scheduler))
    click.echo(f"GeoPackage → {out['gpkg']}\nDự án QGIS → {out['project']}\nẢnh GeoTIFF → {out['tif']}")


@cli.command()
@workdir_option
@reports_errors
@alone_in_workdir
def aggregate(workdir: Path) -> None:
    """Area by land-use code × user/manager object per commune → stats/areas.csv.

    \b
    Example:
      kiemke aggregate --workdir data/processed
    """
    out = run_aggregate(WorkDir(Path(workdir)))
    click.echo(f"Diện tích → {out['areas']}; tổng hợp → {out['summary']}")


@cli.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="inventory.toml")
@click.option("--scheduler", default=None,
              help="Dask scheduler address (tcp://host:8786) of an existing cluster, or 'sync' to run in this "
                   "process. Default: a local cluster, one worker per core, started at the first step of "
                   f"{LOCAL_CLUSTER_FROM} or more tasks (or [inventory] scheduler).")
@click.option("--workers", type=click.IntRange(1, 512), default=None, help="Workers of the local cluster.")
@reports_errors
def inventory(config_path: Path, scheduler: str | None, workers: int | None) -> None:
    """Run every stage from the config: ingest → qa → khoanh → change → aggregate → forms → regroup → maps → package.

    \b
    Example:
      kiemke inventory --config inventory.toml
    """
    settings = load_settings(config_path)
    if settings.input_root is None:
        raise click.ClickException(f"{config_path}: [inventory] input is missing (the raw-data folder).")
    seconds = run_inventory(settings, _scheduler(scheduler or settings.scheduler), workers)
    click.echo(f"Kiểm kê {settings.province.name_vi} xong trong {vn_number(seconds, 1)} giây. "
               f"Kết quả:\n{outputs_summary(WorkDir(settings.workdir), settings)}")


speak_vietnamese(cli)  # the help pages, as the officer reads them


def _settings(config_path: Path | None, *, province: str | None, workdir: Path,
              commune_code: str | None) -> Settings:
    """Settings from a config file and/or command-line options (options win;
    the config's province and work directory unless given)."""
    try:
        given = find_province(province) if province is not None else None
    except UnknownProvinceError as exc:
        raise click.BadParameter(str(exc), param_hint="--province") from None
    if config_path is not None:
        settings = load_settings(config_path)
    elif given is not None:
        settings = Settings(province=given)
    else:
        raise click.MissingParameter(param_type="option", param_hint="'--province'")
    prov = given or settings.province
    sources = settings.sources + ((SourceOverride("*", commune_code=commune_code),) if commune_code else ())
    if config_path and click.get_current_context().get_parameter_source("workdir") is ParameterSource.DEFAULT:
        workdir = settings.workdir
    return replace(settings, province=prov, workdir=workdir, sources=sources)


def show_usage_error(exc: click.UsageError) -> None:
    """A mistyped command as the officer reads it: the command's usage, where
    its help is, and the error in Vietnamese (click's own words below it)."""
    if exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Xem hướng dẫn: {exc.ctx.command_path} --help", err=True)
    click.echo(f"Lỗi: {officer_message(exc.format_message())}", err=True)


def _stop_now(signum: int, frame: object) -> None:
    """Ctrl-C: stop at once, the local workers first. Every output is written
    under a temporary name and renamed when whole, so what is done is kept and
    the next run goes on from there. (Letting Python raise KeyboardInterrupt
    instead, the run went on when it was raised inside dask's garbage-collector
    callback, and then waited for workers that Ctrl-C had killed.)"""
    click.echo("\nĐã dừng (Ctrl-C): các kết quả đã ghi xong được giữ nguyên; chạy lại để làm tiếp.", err=True)
    for child in multiprocessing.active_children():
        child.terminate()
    os._exit(130)


def main() -> None:
    """Console entry point: no traceback for an officer unless KIEMKE_DEBUG is
    set; Ctrl-C stops the run at once, in a word; Vietnamese whatever the code page."""
    write_utf8()
    if not os.environ.get("KIEMKE_DEBUG"):
        signal.signal(signal.SIGINT, _stop_now)
        # the semaphores of the workers' queues, which the resource tracker (a process of its own, started
        # with this environment) removes once a run stopped by Ctrl-C has ended, without a word of it
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                               "ignore:resource_tracker:UserWarning"]))
    try:
        cli(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Đã dừng (aborted).", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        show_usage_error(exc)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Lỗi: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug of ours: say so in one paragraph
        if os.environ.get("KIEMKE_DEBUG"):
            raise
        click.echo(f"Lỗi của chương trình (internal error) {type(exc).__name__}: {exc}. "
                   "Chạy lại với KIEMKE_DEBUG=1 để có thông tin chi tiết và gửi cho nhóm phát triển.", err=True)
        sys.exit(2)
