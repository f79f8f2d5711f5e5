"""Strict, fast validation of prediction requests against the dataset schema.

pandera is right for whole files; a request needs microseconds, so this is a
direct check of each field: present, known, of the right JSON type, finite,
inside the schema's range or allowed values. Every problem is reported, not
just the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from migraine_ml.data.schema import Schema
from migraine_ml.modeling.fastpath import category_codes

_ABSENT = object()


@dataclass(frozen=True)
class Problem:
    field: str
    message: str
    record: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"field": self.field, "problem": self.message}
        if self.record is not None:
            out["record"] = self.record
        return out


class FieldCheck(NamedTuple):
    """What the quick path checks of one field (a tuple: unpacked in the hot loop)."""

    name: str
    whole_number: bool
    low: float
    high: float
    binary: bool
    codes: dict[str, float] | None  # value -> code for a category field


class RecordValidator:
    """Turns JSON records into a float matrix in schema feature order, or problems.

    A category value becomes its code, its position in the schema's values
    (the lookup `migraine_ml.modeling.fastpath.encode_categories` applies to a table).
    """

    def __init__(self, schema: Schema):
        self.features = schema.features
        self.known = set(self.features)
        self.columns = [schema.columns[name] for name in self.features]
        self.codes = category_codes(schema)
        self._fields = [
            FieldCheck(
                c.name,
                c.dtype == "int",
                *(c.range or (-math.inf, math.inf)),
                c.dtype == "binary",
                self.codes.get(c.name),
            )
            for c in self.columns
        ]

    def _value(self, column, value: Any) -> tuple[Any, str | None]:
        if value is None:
            return math.nan, None  # explicitly unknown: the model imputes it
        if column.dtype == "category":
            if not isinstance(value, str):
                return None, f"expected one of {column.allowed()}, got {type(value).__name__}"
            if value not in self.codes[column.name]:
                return None, f"{value!r} is not one of {column.allowed()}"
            return self.codes[column.name][value], None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"expected a number ({column.dtype}), got {type(value).__name__}"
        if not math.isfinite(value):
            return None, "must be a finite number"
        if column.dtype == "binary" and value not in (0, 1):
            return None, f"{value} is not 0 or 1"
        if column.dtype == "int" and not float(value).is_integer():
            return None, f"{value} is not a whole number"
        if column.range is not None and not column.range[0] <= value <= column.range[1]:
            return None, f"{value} is outside {column.allowed()}"
        return float(value), None

    def _fast_row(self, record: Any) -> list[float] | None:
        """The common case in one tight loop: every field present and valid.

        Returns None at the first doubt; `validate` then redoes the record slowly
        to name every problem.
        """
        if type(record) is not dict or len(record) != len(self._fields):
            return None
        row = []
        for name, is_int, low, high, binary, codes in self._fields:
            value = record.get(name, _ABSENT)
            kind = type(value)
            if codes is not None:
                if kind is str:
                    value = codes.get(value)
                    if value is None:
                        return None
                elif value is None:
                    value = math.nan
                else:
                    return None
            elif kind is float:
                if not low <= value <= high or (is_int and not value.is_integer()):
                    return None  # also false for NaN
            elif kind is int:
                if not low <= value <= high:
                    return None
            elif value is None:
                value = math.nan
            else:
                return None
            if binary and value not in (0, 1) and value == value:
                return None
            row.append(value)
        return row

    def validate(self, records: list[Any]) -> tuple[list[list[Any]], list[Problem]]:
        if self._fields is not None:
            rows = [self._fast_row(record) for record in records]
            if all(row is not None for row in rows):
                return rows, []
        rows, problems = [], []
        several = len(records) > 1
        for i, record in enumerate(records):
            where = i if several else None
            if not isinstance(record, dict):
                problems.append(Problem("(record)", "expected a JSON object of features", where))
                continue
            problems += [Problem(k, "unknown field", where) for k in record if k not in self.known]
            row = []
            for column in self.columns:
                if column.name not in record:
                    problems.append(Problem(column.name, "missing", where))
                    continue
                value, message = self._value(column, record[column.name])
                if message:
                    problems.append(Problem(column.name, message, where))
                row.append(value)
            rows.append(row)
        return rows, problems

    def matrix(self, rows: list[list[Any]]) -> np.ndarray:
        return np.asarray(rows, dtype=float)
