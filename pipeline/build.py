"""What this kiemke is: its version number and a digest of its code and
tables. Every result kept from run to run is kept for one build: another
build (an update, even under the same version number) makes them again."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from . import __version__


def package_digest(root: Path) -> str:
    """A digest of a package folder: every file (the code and the tables it
    ships) by path and content, line ends as LF (a checkout on Windows is the
    same code); compiled files left out."""
    digest = hashlib.sha1()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """This kiemke's :func:`package_digest` (12 ms, once a process)."""
    return package_digest(Path(__file__).parent)


def kiemke_build() -> str:
    """This kiemke: its version and the start of its :func:`code_digest` ("0.1.0+1a2b3c4d5e6f")."""
    return f"{__version__}+{code_digest()[:12]}"
