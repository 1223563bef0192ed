"""The checks every section of the config goes through: a key's presence and
type, allowed keys, a positive number, a CRS PROJ knows, a path from the
config's folder. Each raises :class:`ConfigError` naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from ..errors import ConfigError
from ..vntext import name_key


def require(table: dict, key: str, kind: type, where: str, *, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing key '{key}' ({kind.__name__} expected).")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where}: key '{key}' must be a {kind.__name__}, got {type(value).__name__} {value!r}."
        )
    return value


def positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where} must be a number > 0, got {value!r}.")
    return float(value)


def check_crs(text: str, where: str) -> str:
    try:
        CRS.from_user_input(text)
    except ProjCRSError as exc:
        raise ConfigError(
            f"{where}: crs {text!r} is not a CRS PROJ knows ({exc}). "
            "Use an EPSG code such as 'EPSG:9215' (VN-2000 / TM-3 107-15) or a WKT/PROJ string."
        ) from None
    return text


def check_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.")


def path_of(text: str, base_dir: Path) -> Path:
    """A path of the config, from the config's folder unless absolute; spelled
    as on disk (:func:`on_disk`)."""
    path = Path(text)
    return on_disk(path if path.is_absolute() else base_dir / path)


def on_disk(path: Path) -> Path:
    """``path`` with each of its folders and its file spelled as on disk when
    the config spells them in another Unicode form or case (a folder named with
    Unikey's "Unicode tổ hợp", one copied from Windows); as written from the
    first part that has no single such match (a glob, a layer name, a folder
    still to be made)."""
    if path.exists():
        return path
    found = Path(path.anchor)
    parts = path.parts[1:] if path.anchor else path.parts
    for k, part in enumerate(parts):
        if not (found / part).exists():
            same = [p for p in found.iterdir() if name_key(p.name) == name_key(part)] if found.is_dir() else []
            if len(same) != 1:
                return found.joinpath(*parts[k:])
            part = same[0].name
        found = found / part
    return found
