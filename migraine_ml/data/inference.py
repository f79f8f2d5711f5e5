"""A first schema for a user's CSV: dtypes, ranges and values read from the data.

The result is a draft for a person to review, not a contract: observed minima
and maxima are narrower than what is plausible, the order of category values
is alphabetical, and a column's role beyond the ones named on the command line
is a guess. The YAML says so where it matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from migraine_ml.data.schema import Schema, SchemaFileError, plain_number, schema_from_dict

# More distinct text values than this and a column is treated as an identifier.
MAX_CATEGORIES = 30
# Classification targets with more distinct numbers than this look continuous.
MAX_CLASSES = 20
# The negative word of a two-valued text column goes first: the last listed
# value of a two-class target is the positive class.
NEGATIVE_WORDS = {"no", "n", "false", "f", "negative", "neg", "absent", "none", "0", "never"}


class InferenceError(ValueError):
    """The CSV or the requested roles cannot make a schema."""


@dataclass(frozen=True)
class Inferred:
    """The draft schema and, per column, what a reviewer should know."""

    schema: Schema
    notes: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _numeric(values: pd.Series) -> pd.Series | None:
    """The column as numbers, or None if any present cell is not a number."""
    if values.dtype == bool:
        return values.astype(int)
    parsed = pd.to_numeric(values, errors="coerce")
    return parsed if parsed.notna().sum() == values.notna().sum() else None


def _ordered_text(values: list[str]) -> list[str]:
    """Alphabetical, except a yes/no-like pair lists its negative word first."""
    ordered = sorted(values)
    if len(ordered) == 2 and ordered[1].strip().lower() in NEGATIVE_WORDS:
        ordered.reverse()
    return ordered


def _column_spec(values: pd.Series, role: str) -> tuple[dict[str, Any], list[str]]:
    """dtype, range or values of one column, and review notes."""
    present = values.dropna()
    notes: list[str] = []
    numbers = _numeric(present)
    if numbers is not None:
        low, high = plain_number(numbers.min()), plain_number(numbers.max())
        if set(numbers.unique()) <= {0, 1} and role != "regression_target":
            spec: dict[str, Any] = {"dtype": "binary", "role": role}
        else:
            whole = bool((numbers == numbers.round()).all())
            spec = {"dtype": "int" if whole else "float", "role": role}
            if role not in ("group", "id"):
                spec["range"] = [low, high]
                notes.append(f"observed {low} to {high}: widen to the plausible limits")
        if numbers.nunique() == 1:
            notes.append("constant in this data")
        return spec, notes
    text = present.astype(str)
    if role in ("group", "id"):
        return {"dtype": "category", "role": role}, notes
    distinct = sorted(text.unique())
    if len(distinct) > MAX_CATEGORIES and role == "feature":
        notes.append(
            f"{len(distinct)} distinct text values: kept out of the features as an identifier; "
            "list its values and set role: feature to use it"
        )
        return {"dtype": "category", "role": "id"}, notes
    spec = {"dtype": "category", "role": role, "values": _ordered_text(distinct)}
    if len(distinct) > 2 and role == "feature":
        notes.append(
            "values sorted alphabetically: if they have an order, list it and add ordered: true"
        )
    return spec, notes


def _condition(frame: pd.DataFrame, target: str, regression_target: str, classes: list[Any]):
    """The classification value under which the regression target is defined, if one is.

    Severity is only meaningful when a migraine occurred: if every row of the
    other class has the regression target missing or 0, regress on this class only.
    """
    if len(classes) != 2:
        return None
    negative, positive = (getattr(c, "item", lambda c=c: c)() for c in classes)
    amount = pd.to_numeric(frame[regression_target], errors="coerce")
    labels = frame[target].astype(str)
    negative_rows = amount[labels == str(negative)]
    if negative_rows.empty or not (negative_rows.isna() | (negative_rows == 0)).all():
        return None
    return {"column": target, "equals": positive}


def infer_schema(
    frame: pd.DataFrame,
    *,
    target: str | None,
    regression_target: str | None = None,
    group: str | None = None,
    name: str = "dataset",
) -> Inferred:
    """A draft schema for `frame` with the given target, regression target and group columns."""
    named = {"target": target, "regression target": regression_target, "group": group}
    for what, column in named.items():
        if column is not None and column not in frame.columns:
            raise InferenceError(
                f"{what} column '{column}' is not in the CSV; its columns are: "
                + ", ".join(map(str, frame.columns))
            )
        if column is not None and frame[column].isna().all():
            raise InferenceError(f"{what} column '{column}' is empty in every row")
    chosen = [c for c in named.values() if c is not None]
    if len(set(chosen)) < len(chosen):
        raise InferenceError("target, regression target and group must be different columns")
    if target is None and regression_target is None:
        raise InferenceError("name a target column (and/or a regression target)")
    roles = {
        target: "classification_target",
        regression_target: "regression_target",
        group: "group",
    }

    columns: dict[str, dict[str, Any]] = {}
    notes: dict[str, list[str]] = {}
    skipped = []
    for column in frame.columns:
        values = frame[column]
        if values.isna().all():
            skipped.append(str(column))
            continue
        role = roles.get(column, "feature")
        spec, column_notes = _column_spec(values, role)
        missing = values.isna().mean()
        if missing > 0:
            column_notes.append(f"{missing:.1%} missing")
        columns[str(column)] = spec
        notes[str(column)] = column_notes

    if target is not None:
        labels = frame[target].dropna()
        numbers = _numeric(labels)
        if labels.nunique() < 2:
            raise InferenceError(f"target '{target}' has fewer than two classes")
        if numbers is not None and numbers.nunique() > MAX_CLASSES:
            raise InferenceError(
                f"target '{target}' has {numbers.nunique()} distinct numbers: it looks "
                "continuous; name it as the regression target instead"
            )
        if numbers is None and labels.nunique() > MAX_CLASSES:
            raise InferenceError(
                f"target '{target}' has {labels.nunique()} distinct values: too many classes "
                f"(at most {MAX_CLASSES})"
            )
        if numbers is not None and columns[target]["dtype"] != "binary":
            # a numeric class label is a class, not a measurement: no range check needed
            columns[target].pop("range", None)
            notes[target] = [n for n in notes[target] if not n.startswith("observed")]
    if regression_target is not None:
        if _numeric(frame[regression_target].dropna()) is None:
            raise InferenceError(f"regression target '{regression_target}' is not numeric")
        if target is not None:
            classes = columns[target].get("values") or sorted(frame[target].dropna().unique())
            condition = _condition(frame, target, regression_target, list(classes))
            if condition is not None:
                columns[regression_target]["condition"] = condition
                notes[regression_target].append(
                    f"missing or 0 whenever {target} is not {condition['equals']!r}: "
                    "regressed on those rows only"
                )
    if group is not None:
        sizes = frame[group].value_counts()
        notes[group] = [f"{len(sizes)} groups, {sizes.median():.0f} rows per group (median)"]
    features = [c for c, spec in columns.items() if spec["role"] == "feature"]
    if not features:
        raise InferenceError("no column is left to be a feature")
    try:
        schema = schema_from_dict({"name": name, "columns": columns})
    except SchemaFileError as err:
        raise InferenceError(str(err)) from err
    return Inferred(schema=schema, notes=notes, skipped=skipped)


HEADER = """\
# Schema inferred from {source} ({rows} rows) by `make schema`. REVIEW IT BEFORE USE:
# - range: the observed minimum and maximum. Preprocessing treats values outside
#   as entry errors and the service rejects them: widen to the plausible limits.
# - values: every value seen. A value outside the list is rejected by the service.
#   Add `ordered: true` where the values are listed in their natural order to
#   encode them as 0, 1, 2, ... instead of one column each (one-hot).
# - For a two-class target the LAST listed value is the positive class.
# - role: feature | classification_target | regression_target | group | id.
#   A `group` (patient id) keeps each patient's rows on one side of every split.
#   Set role: id on any column that must not be a feature.
"""


def to_yaml(inferred: Inferred, *, source: str, rows: int) -> str:
    """The schema as YAML, one line per column, the review notes as comments."""
    lines = [HEADER.format(source=source, rows=rows).rstrip("\n")]
    for name in inferred.skipped:
        lines.append(f"# left out: '{name}' is empty in every row")
    lines.append(yaml.safe_dump({"name": inferred.schema.name}, sort_keys=False).strip())
    lines.append("columns:")
    for name, spec in inferred.schema.to_dict()["columns"].items():
        key = yaml.safe_dump(name).strip().removesuffix("\n...")
        value = yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=10**6).strip()
        note = "; ".join(inferred.notes.get(name, []))
        lines.append(f"  {key}: {value}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"
