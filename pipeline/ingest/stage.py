"""The ingest stage: every raw file into its cache entry (in parallel), every
changed commune put together, the reports written."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd

from ..build import kiemke_build
from ..config import Settings
from ..errors import InputFileError
from ..io import LAYER_MARK, layer_file, read_json, write_json_if_changed
from ..messages import officer_message
from ..parallel import executor
from ..paths import shown_path, spelled
from ..records import forget_comparison, record_communes
from ..regime import use_regime
from ..workdir import RunManifest, WorkDir
from .assemble import DUPLICATE_NOTE, KeptReview, assemble_commune, review_book, safe_name
from .cache import IngestCache, ingest_to_cache
from .columns import map_columns
from .copies import COPY_NOTE, identical_copies
from .corrections import for_source, harvest, record_written, unused
from .linework import pair_lines_with_labels
from .read import VECTOR_SUFFIXES, Source, discover, discover_pattern, unreadable
from .report import FileReport, IngestResult, write_ingest_reports

log = logging.getLogger(__name__)


def run_ingest(work: WorkDir, paths: list[Path], settings: Settings, *, progress: bool = True,
               scheduler: str | None = "sync") -> IngestResult:
    """Ingest files/folders under the run's regime (see :func:`ingest_files`)."""
    with use_regime(settings.regime):
        return ingest_files(work, paths, settings, progress=progress, scheduler=scheduler)


def ingest_files(work: WorkDir, paths: list[Path], settings: Settings, *, progress: bool = True,
                 scheduler: str | None = "sync") -> IngestResult:
    """Ingest files/folders into the work directory (parcels, quarantine, reports)
    and record the run manifest there.

    Incremental: a file whose bytes, overrides and settings have not changed is
    taken from ``cache/ingest/`` instead of being read again, and only the
    communes it feeds are rewritten (``result.changed``).
    """
    files, copies, left = _sources(work, paths, settings)
    settings = replace(settings, workdir=work.root)
    corrections = harvest(work, settings.corrections)
    work.write_manifest(RunManifest.from_settings(settings))
    if settings.previous is None:
        forget_comparison(work)  # made by a run that had a previous inventory
    with executor(scheduler, shared=work.root, inputs=paths) as pmap:
        done = _ingest_stale(pmap, files, settings, corrections, progress)
        # each report under its file's path as now given (an entry may be of the project folder before it moved)
        reports = [replace(IngestCache.read_report(Path(folder)), path=source.label)
                   for source, (folder, _) in zip(files, done, strict=True)]
        raw = partial(spelled, base=settings.input_root)  # a file as the records name it: the same when moved
        reread = {raw(source.label) for source, (_, was_read) in zip(files, done, strict=True) if was_read}
        if sum(r.features_in for r in reports) == 0:
            _refuse_empty(paths, reports)
        folders_of = _folders_of([folder for folder, _ in done], reports)
        sources_of = {code: sorted({raw(r.path) for r, (f, _) in zip(reports, done, strict=True) if f in folders})
                      for code, folders in sorted(folders_of.items())}
        state_path = work.cache_dir / "communes.json"
        state = read_json(state_path, {})
        state = {code: entry for code, entry in state.items() if isinstance(entry, dict)}  # older layout: redo
        changed = _changed_communes(work, state, sources_of, reread)
        gone = record_communes(work, map(safe_name, sources_of))  # what a commune no file gives left is removed
        # each changed commune is put together from its files' cache entries on a worker
        todo = sorted(changed & set(sources_of))
        version = kiemke_build()  # a commune another kiemke put together is written again, even as it was
        tasks = [(str(work.root), c, folders_of[c], state.get(c, {}).get("kiemke") != version) for c in todo]
        assembled = dict(zip(todo, pmap(assemble_commune, tasks, "ghép xã" if progress else ""), strict=True))
    for code, made in assembled.items():
        state[code] = {"sources": sources_of[code], "duplicates": made.duplicates, "kiemke": version}
        if made.kept:
            _say_kept(review_book(work, code), made.kept)
        if not made.written:  # a commune of a file read again whose rows are as they were
            changed.discard(code)
    state = {code: state[code] for code in sources_of}
    for report, (_, was_read) in zip(reports, done, strict=True):
        if report.features_in == 0 and not report.skipped and "the layer holds no features" not in report.warnings:
            report.warn("the layer holds no features")
        if was_read:  # what reading it found, said once (a worker read it, and kept it in its report)
            _say_warnings(report)
        if report.skipped and LAYER_MARK not in report.path:  # a whole file left: said on the console too
            log.warning("%s: %s", report.path, report.skipped)
        shown = shown_path(report.path, settings.input_root)  # as its parcels name it
        duplicates = sum(entry["duplicates"].get(shown, 0) for entry in state.values())
        if duplicates:
            report.flagged[DUPLICATE_NOTE] = duplicates
    copied = {copy: COPY_NOTE.format(kept=shown_path(kept, settings.input_root)) for copy, kept in copies.items()}
    unused_rows = _unused_corrections(work, settings, corrections, reports)
    for report in unused_rows:
        _say_warnings(report)
    extra = _left_reports(copied) + _left_reports(left) + unused_rows
    result = IngestResult(reports + extra, _existing(work.parcels, sources_of),
                          _existing(work.quarantine, sources_of), changed=changed, gone=gone)
    record_written(work, [review_book(work, code) for code, made in assembled.items() if made.reviewed])
    write_ingest_reports(result, work, settings)  # rewritten only when they say something new
    write_json_if_changed(state_path, state)
    log.info("ingest: %d files (%d read, %d unchanged, %d copies not read), %d communes rewritten",
             len(files) + len(copies), len(reread), len(files) - len(reread), len(copies), len(changed))
    return result


def _sources(work: WorkDir, paths: list[Path], settings: Settings) -> tuple[list[Source], dict[str, str],
                                                                            dict[Path, str]]:
    """The layers to read (boundary lines paired with their labels' file), the
    identical copies left (copy → the file kept) and the files kiemke cannot
    open (with why); an error when nothing can be read."""
    reference = _reference_layers(settings)
    files = [source for source in discover(paths, outside=work.root) if source.key not in reference]
    left = unreadable(paths, outside=work.root)
    if not files and left:  # each said on the console, the first stops the run
        _left_reports(left)
        path, why = next(iter(left.items()))
        refusal = f"{path}: {why}"  # each of UNREADABLE's reasons is translated (tests/test_ingest_lines.py)
        raise InputFileError(refusal)
    if not files:
        raise InputFileError(f"No vector files ({', '.join(VECTOR_SUFFIXES)}) under {', '.join(map(str, paths))}.")
    copies = identical_copies(files)
    files = pair_lines_with_labels([source for source in files if source.label not in copies],
                                   partial(_names_landuse, settings))
    for source in files:
        if source.lines:
            log.info("ingest: %s labels the faces of the boundary lines in %s", shown_path(source.label,
                     settings.input_root), ", ".join(shown_path(s.label, settings.input_root) for s in source.lines))
    return files, copies, left


def _say_warnings(report: FileReport) -> None:
    """A file's warnings on the console (in the officer's words there)."""
    for warning in report.warnings:
        log.warning("%s: %s", report.path, warning)


def _say_kept(book: Path, kept: KeptReview) -> None:
    """Where a review workbook holding the officer's notes on parcels no longer to review was kept."""
    if kept.listed:
        log.warning(officer_message(f"{book}: {kept.notes} of the officer's notes are on parcels no longer to review "
                                    f"(their file exported again), so the workbook as it was is kept as {kept.path}"))
    else:
        log.warning(officer_message(f"{book}: the commune has nothing left to review and the workbook holds the "
                                    f"officer's notes, so it is kept as {kept.path}"))


def _names_landuse(settings: Settings, fields: list[str]) -> bool:
    """Whether a layer's field names include a land-use column."""
    return "landuse" in map_columns(pd.DataFrame(columns=fields), settings.column_aliases)


def _left_reports(left: dict[Path, str] | dict[str, str]) -> list[FileReport]:
    """A report for each file not read (a copy, a RAR archive, a DWG) with why,
    said on the console too."""
    for path, why in left.items():
        log.warning("%s: %s", path, why)
    return [FileReport(path=str(path), skipped=why) for path, why in left.items()]


def _unused_corrections(work: WorkDir, settings: Settings, corrections: pd.DataFrame,
                        reports: list[FileReport]) -> list[FileReport]:
    """A report for each corrections file (CSV, review workbook) with a row that
    named no parcel read: its commune, sheet or parcel number, or its FID, is wrong."""
    used = {key for report in reports for key in report.corrections_used}
    by_file: dict[str, FileReport] = {}
    for book, message in unused(corrections, used):
        csv = settings.corrections
        path = csv if csv is not None and Path(csv).name == book else work.review_dir / book
        by_file.setdefault(book, FileReport(path=str(path))).warn(message)
    return list(by_file.values())


def _refuse_empty(paths: list[Path], reports: list[FileReport]) -> None:
    """No feature read: the layers left as not parcels, else empty files."""
    named = ", ".join(str(p) for p in paths)
    skipped = [r.path for r in reports if r.skipped]
    if skipped:
        raise InputFileError(
            f"{named}: no file or layer has a land-use column, so none is read as parcels ({', '.join(skipped)}). "
            "Name the land-use column of the parcels' file under [columns] landuse in inventory.toml.")
    raise InputFileError(f"{named}: the files hold no features (empty layers). "
                         "Check the export: it should contain the commune's parcels.")


def _ingest_stale(pmap, files: list, settings: Settings, corrections, progress: bool) -> list[tuple[str, bool]]:
    """(cache folder, whether read) per file: the files whose cache entry is
    current are not sent to the workers (a run with nothing changed starts none)."""
    fixes = [for_source(corrections, source.label) for source in files]
    names = unnamed_communes(files)
    root = WorkDir(settings.workdir).cache_dir / "ingest"
    caches = [IngestCache(root, s, settings, f, names[s.label]) for s, f in zip(files, fixes, strict=True)]
    stale = {i for i, cache in enumerate(caches) if not cache.is_current()}
    pmap(ingest_to_cache, [(caches[i], files[i], settings, fixes[i], names[files[i].label]) for i in sorted(stale)],
         "ingest" if progress else "")
    return [(str(cache.folder), i in stale) for i, cache in enumerate(caches)]


def unnamed_communes(files: list[Source]) -> dict[str, str]:
    """Per file, the name its parcels take when nothing says their commune: the
    file's name, with as many of its folders as tell it from the files of the
    same name in other folders (``ThuaDat.shp`` in each commune's folder)."""
    paths = {source.label: Path(source.file_label.replace("!", "/")) for source in files}
    names = {label: path.stem for label, path in paths.items()}
    for depth in range(1, max((len(p.parts) for p in paths.values()), default=1)):
        files_of: dict[str, set[Path]] = {}
        for label, name in names.items():
            files_of.setdefault(name, set()).add(paths[label])
        shared = {name for name, same in files_of.items() if len(same) > 1}
        if not shared:
            break
        names = {label: "/".join([*paths[label].parent.parts[-depth:], paths[label].stem]) if name in shared
                 else name for label, name in names.items()}
    return names


def _reference_layers(settings: Settings) -> set:
    """The layers the config names that are not this year's parcels: the
    previous inventory's map, the forest status map, the administrative
    boundaries (and their wider context) and the new units."""
    layers = {s.key for s in discover_pattern(settings.previous.path)} if settings.previous else set()
    named: list[Path | None] = [settings.forest.path] if settings.forest is not None else []
    if settings.boundaries is not None:
        named += [settings.boundaries.path, settings.boundaries.context]
    named += [units.path for units in settings.units]
    present = [Path(path) for path in named if path is not None and layer_file(path).exists()]
    return layers | {s.key for s in discover(present)} if present else layers


def _folders_of(folders: list[str], reports: list[FileReport]) -> dict[str, list[str]]:
    """Commune code → the cache entries of the files that feed it."""
    out: dict[str, list[str]] = {}
    for folder, report in zip(folders, reports, strict=True):
        for code in report.communes:
            out.setdefault(code, []).append(folder)
    return out


def _changed_communes(work: WorkDir, state: dict, sources_of: dict[str, list[str]], reread: set[str]) -> set[str]:
    """Communes to put together again: other files, a file read again, or no
    output yet; and those whose files are gone."""
    changed = {code for code, labels in sources_of.items()
               if state.get(code, {}).get("sources") != labels or set(labels) & reread
               or not work.parcels(safe_name(code)).exists()}
    return changed | (set(state) - set(sources_of))


def _existing(path_of, codes) -> dict[str, Path]:
    return {c: path_of(safe_name(c)) for c in codes if path_of(safe_name(c)).exists()}
