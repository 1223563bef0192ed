"""The console the officer reads while kiemke runs: what each stage did in
Vietnamese, a warning as «Cảnh báo: …» with what to do and its English
original, each line written between the progress bars, never into one. ``-v``
gives the developers' log instead (English, with the loggers' names)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.contrib.logging import logging_redirect_tqdm

from .messages import officer_message, vi

#: The developers' log lines (``kiemke -v``).
DEVELOPER_FORMAT = "%(levelname)s %(name)s: %(message)s"
#: Libraries whose INFO lines are not the officer's business.
NOISY = ("pyogrio", "rasterio", "distributed", "fiona")


class OfficerFormatter(logging.Formatter):
    """A log record in the officer's words: kiemke's INFO lines in Vietnamese;
    a warning or error labelled in Vietnamese, with what to do and the original
    (a library's with the library's name)."""

    def format(self, record: logging.LogRecord) -> str:
        said = record.getMessage()
        if record.levelno < logging.WARNING:
            text = vi(said)
        else:
            label = "Cảnh báo" if record.levelno < logging.ERROR else "Lỗi"
            whose = "" if record.name.partition(".")[0] == "pipeline" else f" ({record.name})"
            text = f"{label}{whose}: {officer_message(said)}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


@contextmanager
def officer_console(verbose: int = 0, quiet: bool = False) -> Iterator[None]:
    """Log to the console for the officer (``verbose`` 1: the developers' log,
    2: with debug lines; ``quiet``: warnings and errors only) while the block
    runs, through the progress bars' writer."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format=DEVELOPER_FORMAT, force=True)
    if not verbose:
        for handler in logging.root.handlers:
            handler.setFormatter(OfficerFormatter())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with logging_redirect_tqdm():
        yield
