"""Exceptions and warnings of kiemke.

The core raises these; the CLI turns them into a one-paragraph message and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations


class KiemkeError(Exception):
    """Base class of every error kiemke reports to an officer."""


class ConfigError(KiemkeError, ValueError):
    """The inventory configuration is wrong: names the key and what is allowed."""


class UnknownProvinceError(KiemkeError, ValueError):
    """A province name or GSO code that is not in the 63-province table."""


class CRSError(KiemkeError, ValueError):
    """A file's coordinates fit no coordinate reference system we can use."""


class InputFileError(KiemkeError):
    """A raw input file cannot be read at all (corrupt, empty, wrong format)."""


class SchemaError(KiemkeError, ValueError):
    """A stage's output breaks its data contract."""


class StageInputMissing(KiemkeError, FileNotFoundError):
    """A stage was run before the stage whose outputs it reads."""


class InventoryWarning(UserWarning):
    """Something an officer should look at; the run goes on."""
