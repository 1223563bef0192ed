"""The user/manager object (đối tượng) of parcels whose file has none.

Inferred per parcel from rules kept as data (``reference/owner_rules.csv``,
with source and confidence), in their order: the owner's name
(households → GDC; "UBND xã …" → UBQ, or TCN on its own office land;
companies → TKT; schools → TSN; agencies, army, police → TCN; pagodas,
churches, đình, đền, nhà văn hóa thôn → CDS), the land use of land nobody
owns in the file (roads, canals, rivers, cemeteries, unused land → UBQ), the
``owner_type`` of the file's ``[[sources]]`` entry, and last a default. Every
parcel keeps how its object was found (``owner_source``) and which rule
decided (``owner_rule``). Under Circular 08/2024 the rules' 2018 codes, and
2018 codes in a file, go through the regime's migration table (GDC → CNV);
one that needs the manager's type (TKQ) keeps a default and is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from ..reference import migrated_code, migration_table, owner_codes, read_table
from ..regime import active_regime
from ..vntext import match_key, strip_diacritics

#: How an object was found (the ``owner_source`` column).
FROM_FILE, FROM_NAME, FROM_LANDUSE, FROM_CONFIG, FROM_DEFAULT, FROM_CORRECTION, FROM_MIGRATION = (
    "file", "name", "landuse", "config", "default", "correction", "migration")
#: How an object was found, as the reports say it.
SOURCE_VI = {FROM_FILE: "trong tệp", FROM_NAME: "suy từ tên chủ", FROM_LANDUSE: "suy từ loại đất",
             FROM_CONFIG: "theo cấu hình", FROM_DEFAULT: "mặc định", FROM_CORRECTION: "sửa theo cán bộ",
             FROM_MIGRATION: "chuyển từ mã của Thông tư 27/2018, cần xác định lại"}
#: Owner names that say nothing (compared folded, without punctuation).
_NO_NAME = re.compile(r"^(n ?a|null|none|khong|khong co|khong ro|chua (xac dinh|co|ro)|dang cap nhat|chua cap nhat"
                      r"|vo chu|\?+|-+|\.+|0)?$")
_PARENTHESIS = re.compile(r"\(([^)]*)\)")
_WORDS = re.compile(r"(?<!\\)\b[^\W\d_]+\b")


def _folded(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w ]", " ", strip_diacritics(text).lower())).strip()


def clean_owner_name(value: object) -> str:
    """An owner name without the notes exports add ("(Đang cập nhật)"), or "" when it names nobody."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    text = _PARENTHESIS.sub(lambda m: "" if _NO_NAME.match(_folded(m.group(1))) else m.group(0), text).strip()
    return "" if _NO_NAME.match(_folded(text)) else text


@dataclass(frozen=True)
class OwnerRule:
    """One row of ``owner_rules.csv``."""

    order: int
    rule: str
    kind: str  # "name" | "landuse" | "default"
    owner_type: str
    name_vi: str
    landuse: frozenset[str]
    keyed: re.Pattern | None  # the pattern on the name's tone-insensitive key (diacritics kept)
    folded: re.Pattern | None  # the pattern on the name without diacritics (when they are optional)

    def matches(self, name_key: str, name_folded: str, landuse: str) -> bool:
        if self.landuse and landuse not in self.landuse:
            return False
        if self.kind != "name":
            return self.kind == "landuse"
        if not name_folded:
            return False
        return bool((self.keyed and self.keyed.search(name_key)) or (self.folded and self.folded.search(name_folded)))


def _key_pattern(pattern: str) -> str:
    """A pattern written in Vietnamese, its words as :func:`match_key` writes them."""
    return _WORDS.sub(lambda m: match_key(m.group(0)), pattern.lower())


def valid_owner_codes() -> set[str]:
    """The object codes a parcel may carry under the active regime."""
    owners = owner_codes()
    return set(owners.index[owners["role"].isin(["user", "manager"])])


def owner_rules() -> tuple[OwnerRule, ...]:
    """The rules of ``reference/owner_rules.csv`` in their order, checked
    against the active regime's user/manager object codes."""
    return _owner_rules(active_regime())


@cache
def _owner_rules(regime: str) -> tuple[OwnerRule, ...]:
    table = read_table("owner_rules.csv")
    valid = valid_owner_codes()
    rules = []
    for row in table.itertuples():
        owner_type = migrated_code(row.owner_type, "owner")
        if owner_type not in valid:
            raise ValueError(f"owner_rules.csv rule {row.rule}: {row.owner_type} is not a user/manager object code")
        pattern = row.pattern
        rules.append(OwnerRule(
            int(row.order), row.rule, row.kind, owner_type, row.name_vi,
            frozenset(migrated_code(c) for c in row.landuse.split("|") if c),
            re.compile(_key_pattern(pattern)) if pattern else None,
            re.compile(_folded_pattern(pattern)) if pattern and row.diacritics != "required" else None))
    return tuple(sorted(rules, key=lambda r: r.order))


def _folded_pattern(pattern: str) -> str:
    return strip_diacritics(pattern).lower()


def rule_text(rule: str) -> str:
    """What decided an object, as the reports say it: the rule's Vietnamese
    name, a migration's own text (``TKQ → CDQ; có thể là …``), or ``""``."""
    return rule_texts().get(rule, rule)


def rule_texts() -> dict[str, str]:
    """Every value ``owner_rule`` takes under the active regime, and what it says (:func:`rule_text`)."""
    return _rule_texts(active_regime())


@cache
def _rule_texts(regime: str) -> dict[str, str]:
    table = migration_table("owner", regime)
    moves = [migration_text(r) for r in table[table["rule"] == "review"].itertuples()]
    return {"": "", "config": "", **{r.rule: r.name_vi for r in _owner_rules(regime)}, **{t: t for t in moves}}


def migration_text(row) -> str:
    """A migrated object's ``owner_rule``: its move and the codes it may be (a row of the owner migration table)."""
    return f"{row.code_2018} → {row.code_2024}; có thể là {row.candidates}"


def infer_one(name: str, landuse: str, config_default: str | None) -> tuple[str, str, str]:
    """(object, how it was found, rule) of one parcel with this owner name and land use."""
    key, folded = (match_key(name), _folded(name)) if name else ("", "")
    for rule in owner_rules():
        if rule.kind == "default":
            if config_default:
                return config_default, FROM_CONFIG, "config"
            return rule.owner_type, FROM_DEFAULT, rule.rule
        if rule.matches(key, folded, landuse):
            return rule.owner_type, FROM_NAME if rule.kind == "name" else FROM_LANDUSE, rule.rule
    return config_default or migrated_code("GDC", "owner"), FROM_CONFIG if config_default else FROM_DEFAULT, "config"


def infer_owners(names: pd.Series, landuse: pd.Series, config_default: str | None = None) -> pd.DataFrame:
    """Per parcel: ``owner_type``, ``owner_source``, ``owner_rule``; computed once
    per distinct (name, land use)."""
    pairs = pd.DataFrame({"name": names.map(clean_owner_name).to_numpy(), "landuse": landuse.to_numpy()})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(pairs.astype(str)))
    decided = [infer_one(name, code, config_default) for name, code in uniques]
    values = np.array(decided, dtype=object).reshape(-1, 3) if decided else np.empty((0, 3), dtype=object)
    out = values[codes] if len(codes) else np.empty((0, 3), dtype=object)
    return pd.DataFrame(out, columns=["owner_type", "owner_source", "owner_rule"], index=names.index)


def migrate_owners(owners: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Objects written with 2018 codes under a regime that migrates them: moves
    made (counted per move, for the ingest report); a code that needs the
    manager's type gets the table's default, flagged (``owner_source``
    ``migration``, the candidates in ``owner_rule``) for the review workbook."""
    table = migration_table("owner")
    codes = owners["owner_type"].astype(object)
    moving = codes.isin(table.index[table["rule"] != "same"]) & ~codes.isin(valid_owner_codes())
    if not moving.any():
        return owners, {}
    rows = table.loc[codes[moving]]
    out = owners.copy()
    out.loc[moving, "owner_type"] = rows["code_2024"].to_numpy()
    review = moving.copy()
    review[moving] = (rows["rule"] == "review").to_numpy()
    out.loc[review, "owner_source"] = FROM_MIGRATION
    out.loc[review, "owner_rule"] = [migration_text(r) for r in table.loc[codes[review]].itertuples()]
    moves = (codes[moving & ~review] + " → " + out.loc[moving & ~review, "owner_type"]).value_counts()
    return out, {f"object code {k} of Circular 27/2018": int(v) for k, v in moves.items()}
