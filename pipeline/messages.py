"""Messages in the officer's words: what ingest and QA say (English, for logs
and developers) rendered in Vietnamese for the reports, the review workbooks
and the GeoPackage, from the table ``pipeline/data/messages_vi.csv``."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import pandas as pd

from .report import vn_number

_NESTED = re.compile(r"⟨(.*?)⟩")
#: A number of the message the translation writes the Vietnamese way: ⟪9408.88⟫ → 9.408,88.
_NUMBER = re.compile(r"⟪(\d+)(?:\.(\d+))?⟫")
#: The same mark in a row of the table, as the officers' guide shows it: "…".
_NUMBER_MARK = re.compile(r"⟪[^⟫]*⟫")


@cache
def _rows() -> pd.DataFrame:
    with (resources.files("pipeline") / "data" / "messages_vi.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


@cache
def _table() -> tuple[tuple[re.Pattern[str], str], ...]:
    rows = _rows()
    return tuple((re.compile(p), v) for p, v in zip(rows["pattern"], rows["vi"], strict=True))


def _match(message: str) -> tuple[re.Pattern[str], str] | None:
    return next(((p, v) for p, v in _table() if p.fullmatch(message)), None)


def _about_file(message: str) -> tuple[str, str]:
    """``("<file>: ", what is said of it)`` when only the latter is a row of the
    table (an error a stage names its file in front of), else ``("", message)``."""
    if _match(message) is None:
        at = message.find(": ")
        while at >= 0:
            if _match(message[at + 2:]) is not None:
                return message[:at + 2], message[at + 2:]
            at = message.find(": ", at + 2)
    return "", message


@cache
def vi(message: str) -> str:
    """``message`` in Vietnamese (as written when no row of the table fits);
    a file named in front is kept; "a; b" (a parcel's flags) is translated part
    by part; a number the translation marks ⟪…⟫ is written 1.234,5."""
    head, message = _about_file(message)
    if head:
        return head + vi(message)
    if "; " in message and _match(message) is None:
        return "; ".join(vi(part) for part in message.split("; "))
    found = _match(message)
    if found is None:
        return message
    pattern, text = found
    text = _NESTED.sub(lambda m: vi(m[1]), pattern.sub(text, message))
    return _NUMBER.sub(lambda m: vn_number(float(f"{m[1]}.{m[2] or 0}"), len(m[2] or "")), text)


def officer_message(message: str) -> str:
    """An error as the officer reads it: in Vietnamese, with what to do, then
    the original (for a report to the developers); one already so is as it is."""
    if message.endswith(")") and "\n  (" in message:
        return message
    head, said = _about_file(message)
    found = _match(said)
    if found is None:  # translated part by part, or not at all
        return message if vi(message) == message else f"{vi(message)}\n  ({message})"
    todo = _rows().loc[_rows()["pattern"] == found[0].pattern, "what_to_do"].iat[0]
    todo = found[0].sub(todo, said) if todo else ""  # "Thông tư \2": the message's own figures
    return f"{head}{vi(said)}" + (f" → {todo}" if todo else "") + f"\n  ({message})"


def untranslated(messages) -> list[str]:
    """The messages (parts of "a; b" too) no row of the table translates."""
    missing = []
    for message in messages:
        parts = [message] if _match(message) else message.split("; ")
        missing += [p for p in parts if p and _match(p) is None]
    return sorted(set(missing))


def officer_table() -> str:
    """Every message an officer may read and what to do about it, as a
    Markdown table (the officers' guide prints it)."""
    lines = ["| Thông báo | Việc cần làm |", "|---|---|"]
    for text, todo in zip(_rows()["vi"], _rows()["what_to_do"], strict=True):
        if todo:
            shown = _NUMBER_MARK.sub("…", re.sub(r"\\\d", "…", text).replace("⟨…⟩", "…"))
            todo = re.sub(r"\\\d", "…", todo)
            lines.append(f"| {shown.replace('|', '/')} | {todo.replace('|', '/')} |")
    return "\n".join(lines)
