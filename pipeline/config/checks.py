"""The checks every section of the config goes through: a key's presence and
type, allowed keys, a positive number, a CRS PROJ knows, a path from the
config's folder. Each raises :class:`ConfigError` naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from ..errors import ConfigError


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
    path = Path(text)
    return path if path.is_absolute() else base_dir / path
