"""The console the officer reads: while kiemke runs, what each stage did in
Vietnamese, a warning as «Cảnh báo: …» with what to do and its English
original, each line written between the progress bars, never into one (``-v``
gives the developers' log instead: English, with the loggers' names); and the
command line's help in Vietnamese (``pipeline/data/cli_help_vi.toml``)."""

from __future__ import annotations

import codecs
import io
import logging
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from . import __version__
from .build import kiemke_build
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


#: click's own words on a help page, in Vietnamese (headings, the help option, an option's extras).
CLICK_WORDS = {"Options": "Tùy chọn", "Commands": "Lệnh", "Positional arguments": "Tham số",
               "Show this message and exit.": "Xem hướng dẫn này rồi thoát.",
               "[required]": "[bắt buộc]", "default: ": "mặc định: ", "[OPTIONS]": "[TÙY CHỌN]",
               "COMMAND [ARGS]...": "LỆNH [THAM SỐ]..."}
#: The kinds of value an option takes, as click names them (FILE) and in Vietnamese.
METAVARS = {"INTEGER RANGE": "SỐ", "INTEGER": "SỐ", "FLOAT": "SỐ", "TEXT": "GIÁ_TRỊ", "FILE": "TỆP",
            "DIRECTORY": "THƯ_MỤC", "PATH": "ĐƯỜNG_DẪN", "PATHS": "ĐƯỜNG_DẪN"}
_CLICK_WORD = re.compile("|".join(re.escape(w) for w in sorted(CLICK_WORDS, key=len, reverse=True)))
_METAVAR = re.compile(r"\b(" + "|".join(sorted(METAVARS, key=len, reverse=True)) + r")\b")


def in_vietnamese(text: str) -> str:
    """click's own words and value kinds in ``text`` (a help page's line) in Vietnamese."""
    return _METAVAR.sub(lambda m: METAVARS[m[1]], _CLICK_WORD.sub(lambda m: CLICK_WORDS[m[0]], text))


class OfficerHelpFormatter(click.HelpFormatter):
    """A help page with click's own words in Vietnamese."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, in_vietnamese(args), prefix or "Cách dùng: ")

    def write_heading(self, heading: str) -> None:
        super().write_heading(CLICK_WORDS.get(heading, heading))

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        super().write_dl([(in_vietnamese(term), in_vietnamese(text)) for term, text in rows], col_max, col_spacing)


class OfficerContext(click.Context):
    """A command's context whose help pages the officer reads."""

    formatter_class = OfficerHelpFormatter


@cache
def help_texts() -> dict:
    """The Vietnamese help of every command and option (``pipeline/data/cli_help_vi.toml``)."""
    with (resources.files("pipeline") / "data" / "cli_help_vi.toml").open("rb") as fh:
        return tomllib.load(fh)


def speak_vietnamese(group: click.Group) -> click.Group:
    """``group``'s help pages in Vietnamese: each command's text and options'
    help from the table, click's own words by the formatter."""
    table = help_texts()
    for name, command in [("kiemke", group), *group.commands.items()]:
        entry = table[name]
        command.help, command.short_help = entry["help"], entry.get("short")
        command.context_class = OfficerContext
        for param in command.params:
            if isinstance(param, click.Option) and param.name is not None:
                param.help = entry.get("options", {}).get(param.name) or table["options"].get(param.name, param.help)
    return group


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the version number and the build (:mod:`.build`), which
    tells two kiemke of one number apart (what an officer reports with a problem)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"kiemke, phiên bản {__version__} (bản dựng {kiemke_build()})")
        ctx.exit()


def write_utf8() -> None:
    """Console output in UTF-8 where Python would write it in a code page that
    lacks Vietnamese (output piped or sent to a file on Windows, as `make` does:
    "Lỗi" came out as "L\\u1ed7i"); a Windows console gets UTF-8 from Python anyway."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and codecs.lookup(stream.encoding).name != "utf-8":
            stream.reconfigure(encoding="utf-8")
