"""Dataset schema: columns, types, ranges and roles, read from a YAML file.

Everything downstream (validation, preprocessing, features, training, the
service) asks the schema which columns play which role, so no module needs to
name a column of a particular dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

DTYPES = ("int", "float", "binary", "category")
ROLES = ("feature", "classification_target", "regression_target", "group", "id")


class SchemaFileError(ValueError):
    """The schema file itself is malformed."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    role: str
    range: tuple[float, float] | None = None
    values: tuple[Any, ...] | None = None
    description: str = ""
    condition: dict[str, Any] | None = None
    ordered: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.dtype in ("int", "float", "binary")

    @property
    def is_continuous(self) -> bool:
        """Numeric with more than two levels: gets outlier limits and scaling."""
        return self.dtype in ("int", "float")

    def allowed(self) -> str:
        if self.dtype == "binary":
            return "{0, 1}"
        if self.range is not None:
            return f"[{plain_number(self.range[0])}, {plain_number(self.range[1])}]"
        if self.values is not None:
            return "{" + ", ".join(map(str, self.values)) + "}"
        return "any value"


def plain_number(value: float) -> int | float:
    """A whole number as int (18, not 18.0), for messages and YAML a person reads."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Schema:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)

    def _with_role(self, role: str) -> list[str]:
        return [c.name for c in self.columns.values() if c.role == role]

    @property
    def features(self) -> list[str]:
        return self._with_role("feature")

    @property
    def continuous_features(self) -> list[str]:
        return [n for n in self.features if self.columns[n].is_continuous]

    @property
    def binary_features(self) -> list[str]:
        return [n for n in self.features if self.columns[n].dtype == "binary"]

    @property
    def categorical_features(self) -> list[str]:
        """Unordered categories: one-hot encoded."""
        return [
            n
            for n in self.features
            if self.columns[n].dtype == "category" and not self.columns[n].ordered
        ]

    @property
    def ordinal_features(self) -> list[str]:
        """Categories whose values are listed in their natural order: encoded 0, 1, 2, ..."""
        return [n for n in self.features if self.columns[n].ordered]

    @property
    def classification_target(self) -> str | None:
        names = self._with_role("classification_target")
        return names[0] if names else None

    @property
    def regression_target(self) -> str | None:
        names = self._with_role("regression_target")
        return names[0] if names else None

    @property
    def group(self) -> str | None:
        names = self._with_role("group")
        return names[0] if names else None

    @property
    def targets(self) -> list[str]:
        return [t for t in (self.classification_target, self.regression_target) if t]

    @property
    def required(self) -> list[str]:
        """Columns a data file must have."""
        return list(self.columns)

    def to_dict(self) -> dict[str, Any]:
        columns = {}
        for col in self.columns.values():
            spec: dict[str, Any] = {"dtype": col.dtype, "role": col.role}
            if col.range is not None:
                spec["range"] = [plain_number(v) for v in col.range]
            if col.values is not None:
                spec["values"] = list(col.values)
            if col.condition is not None:
                spec["condition"] = dict(col.condition)
            if col.ordered:
                spec["ordered"] = True
            if col.description:
                spec["description"] = col.description
            columns[col.name] = spec
        return {"name": self.name, "columns": columns}


def schema_from_dict(raw: dict[str, Any]) -> Schema:
    """Build a Schema from its YAML structure, rejecting anything ambiguous."""
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict) or not raw["columns"]:
        raise SchemaFileError("schema needs a non-empty 'columns' mapping")
    columns: dict[str, Column] = {}
    for name, spec in raw["columns"].items():
        if not isinstance(spec, dict):
            raise SchemaFileError(f"column '{name}': expected a mapping, got {spec!r}")
        dtype = spec.get("dtype")
        role = spec.get("role", "feature")
        if dtype not in DTYPES:
            raise SchemaFileError(f"column '{name}': dtype {dtype!r} is not one of {DTYPES}")
        if role not in ROLES:
            raise SchemaFileError(f"column '{name}': role {role!r} is not one of {ROLES}")
        value_range = spec.get("range")
        if value_range is not None:
            if len(value_range) != 2 or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in value_range
            ):
                raise SchemaFileError(f"column '{name}': range must be [min, max] numbers")
            if value_range[0] > value_range[1]:
                raise SchemaFileError(f"column '{name}': range min > max")
            value_range = (float(value_range[0]), float(value_range[1]))
        values = spec.get("values")
        # group and id columns are never encoded, so they need no list of values
        if dtype == "category" and not values and role not in ("group", "id"):
            raise SchemaFileError(f"column '{name}': a category column needs 'values'")
        ordered = spec.get("ordered", False)
        if ordered not in (True, False) or (ordered and dtype != "category"):
            raise SchemaFileError(f"column '{name}': 'ordered: true' is for category columns")
        columns[str(name)] = Column(
            name=str(name),
            dtype=dtype,
            role=role,
            range=value_range,
            values=tuple(values) if values is not None else None,
            description=str(spec.get("description", "")),
            condition=spec.get("condition"),
            ordered=ordered,
        )
    schema = Schema(name=str(raw.get("name", "dataset")), columns=columns)
    for role in ("classification_target", "regression_target", "group"):
        if len(schema._with_role(role)) > 1:
            raise SchemaFileError(f"schema has more than one column with role '{role}'")
    if not schema.targets:
        raise SchemaFileError("schema names no target (classification_target/regression_target)")
    if not schema.features:
        raise SchemaFileError("schema names no feature columns")
    return schema


def load_schema(path: str | Path) -> Schema:
    with open(path, encoding="utf-8") as fh:
        return schema_from_dict(yaml.safe_load(fh))


def condition_holds(frame: pd.DataFrame, condition: dict[str, Any]) -> pd.Series:
    """Rows where a column's schema condition (`{column, equals}`) holds."""
    column, wanted = frame[condition["column"]], condition["equals"]
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        return pd.to_numeric(column, errors="coerce") == float(wanted)
    return column.astype(str) == str(wanted)
