"""Data validation against a schema: hard checks stop the pipeline, soft ones warn.

Types and ranges are checked with pandera; the dataset-level checks (missing
share, class sizes, duplicates) are plain pandas counts.

Every check of the validate stage lives here, each short; hence the module's
length (~400 lines).
"""

from __future__ import annotations

import html
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from migraine_ml.data.preprocess import Fences, tukey_fences
from migraine_ml.data.schema import Schema, condition_holds

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"
EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    severity: str
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass  # built up check by check while a file is validated
class ValidationReport:
    checks: list[Check] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks if c.severity == ERROR)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.severity == ERROR]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.severity == WARNING]

    def add(self, name: str, problems: list[str], severity: str, ok: str) -> None:
        """Record one check: passed when `problems` is empty, else one line per problem."""
        detail = "; ".join(problems) or ok
        self.checks.append(Check(name, not problems, severity, detail, problems))

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "summary": self.summary,
        }


def _examples(values: pd.Series) -> str:
    shown = [repr(getattr(v, "item", lambda v=v: v)()) for v in pd.unique(values)[:EXAMPLES_SHOWN]]
    return ", ".join(shown)


def _shown(value: Any) -> str:
    """A cell as the user wrote it: 2 rather than np.float64(2.0)."""
    value = getattr(value, "item", lambda: value)()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _type_schema(schema: Schema, present: list[str]) -> pa.DataFrameSchema:
    """Hard type checks: numeric columns must parse as numbers."""
    columns = {
        name: pa.Column(float, coerce=True, nullable=True)
        for name in present
        if schema.columns[name].is_numeric
    }
    return pa.DataFrameSchema(columns, strict=False)


def _range_schema(schema: Schema, present: list[str]) -> pa.DataFrameSchema:
    """Soft checks: values outside the schema's range or allowed values."""
    columns = {}
    for name in present:
        col = schema.columns[name]
        if col.dtype == "binary":
            columns[name] = pa.Column(float, pa.Check.isin([0.0, 1.0]), nullable=True)
        elif col.range is not None:
            columns[name] = pa.Column(float, pa.Check.in_range(*col.range), nullable=True)
        elif col.values is not None:
            # no dtype: pandas 3 reads text as `str`, older pandas as `object`
            columns[name] = pa.Column(None, pa.Check.isin(list(col.values)), nullable=True)
    return pa.DataFrameSchema(columns, strict=False)


def _failure_cases(pandera_schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        pandera_schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
        return cases[cases["column"].notna()]
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])


def _uninformative(frame: pd.DataFrame, features: list[str], *, min_rows: int) -> list[str]:
    """Constant features, and features that differ from their usual value in a handful of rows."""
    problems = []
    for name in features:
        if name not in frame:
            continue
        counts = frame[name].value_counts()
        if counts.empty:
            continue
        usual, rest = _shown(counts.index[0]), int(counts.iloc[1:].sum())
        if rest == 0:
            problems.append(f"column '{name}': constant ({usual} in every row); it cannot help")
        elif rest < min_rows:
            rows = "1 row differs" if rest == 1 else f"{rest} rows differ"
            problems.append(f"column '{name}': only {rows} from {usual}; too few to learn from")
    return problems


def _rare_categories(frame: pd.DataFrame, schema: Schema, *, min_rows: int) -> list[str]:
    """Category values seen in so few rows that their one-hot column is nearly constant."""
    problems = []
    for name in schema.categorical_features + schema.ordinal_features:
        if name not in frame:
            continue
        counts = frame[name].value_counts()
        rare = {str(value): int(n) for value, n in counts.items() if n < min_rows}
        if rare:
            listed = ", ".join(f"{v!r} ({n} rows)" for v, n in rare.items())
            problems.append(f"column '{name}': rare values {listed}; too few to learn from")
    return problems


def _beyond_fences(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    iqr_factor: float,
    min_distinct: int,
    max_share: float,
) -> list[str]:
    """Continuous features whose outlier fences would limit more than `max_share` of the values.

    So many "outliers" are more likely a part of the data than errors. The fences are
    the preprocessor's (`tukey_fences`), learned here on the whole file after its range
    check, as the preprocessor learns them on the train rows.
    """
    problems = []
    for name in schema.continuous_features:
        if name not in frame:
            continue
        values = frame[name]
        value_range = schema.columns[name].range
        if value_range is not None:
            values = values.where(values.between(*value_range))
        fences = tukey_fences(values, iqr_factor=iqr_factor, min_distinct=min_distinct)
        if not isinstance(fences, Fences):
            continue
        beyond, present = int(fences.outside(values).sum()), int(values.notna().sum())
        if beyond > max_share * present:
            problems.append(
                f"column '{name}': {beyond} of {present} values ({beyond / present:.1%}) lie "
                f"beyond the outlier fences [{fences.lower:.4g}, {fences.upper:.4g}] "
                f"(IQR factor {iqr_factor:g}); preprocessing limits them"
            )
    return problems


def coerce_types(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Numeric schema columns as float (unparseable -> NaN), category columns as text."""
    out = frame.copy()
    for name in schema.columns:
        if name not in out:
            continue
        if schema.columns[name].is_numeric:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype(float)
        else:
            out[name] = out[name].astype(object).where(out[name].notna(), None)
            out[name] = out[name].map(lambda v: v if v is None else str(v))
    return out


def validate_frame(
    frame: pd.DataFrame,
    schema: Schema,
    *,
    max_missing: float = 0.10,
    min_rows: int = 50,
    min_class_rows: int = 10,
    min_class_share: float = 0.10,
    outlier_iqr_factor: float = 3.0,
    outlier_min_distinct: int = 10,
    max_outlier_share: float = 0.01,
) -> ValidationReport:
    """Check a raw data frame against the schema and the dataset-level thresholds.

    `outlier_iqr_factor` and `outlier_min_distinct` are the preprocessor's fence
    settings; the `outlier_fences` check warns where those fences would limit more
    than `max_outlier_share` of a column's values.
    """
    report = ValidationReport()
    present = [c for c in schema.required if c in frame.columns]
    missing_columns = [c for c in schema.required if c not in frame.columns]
    report.add(
        "columns_present",
        [f"column '{c}': missing (role {schema.columns[c].role})" for c in missing_columns],
        ERROR,
        f"all {len(schema.required)} schema columns present",
    )
    extra = [c for c in frame.columns if c not in schema.columns]
    report.add(
        "unknown_columns",
        [f"column '{c}': not in the schema, ignored" for c in extra],
        WARNING,
        "no columns outside the schema",
    )

    type_cases = _failure_cases(_type_schema(schema, present), frame)
    type_problems = []
    for name, cases in type_cases.groupby("column", sort=False):
        dtype = schema.columns[name].dtype
        type_problems.append(
            f"column '{name}': {cases['index'].nunique()} non-numeric values "
            f"(e.g. {_examples(cases['failure_case'])}), expected {dtype}"
        )
    report.add("column_types", type_problems, ERROR, "numeric columns parse as numbers")

    typed = coerce_types(frame[present], schema)
    report.add(
        "min_rows",
        [] if len(frame) >= min_rows else [f"{len(frame)} rows, expected at least {min_rows}"],
        ERROR,
        f"{len(frame)} rows (minimum {min_rows})",
    )

    missing_share = frame[present].isna().mean() if len(frame) else pd.Series(dtype=float)
    for name in present:
        condition = schema.columns[name].condition
        if condition and condition["column"] in typed and len(frame):
            # only required where its condition holds (severity on migraine days)
            applies = condition_holds(typed, condition).to_numpy()
            missing_share[name] = (
                float(frame.loc[applies, name].isna().mean()) if applies.any() else 0.0
            )
    report.add(
        "missing_share",
        [
            f"column '{name}': {share:.1%} missing, above the limit {max_missing:.0%}"
            for name, share in missing_share.items()
            if share > max_missing
        ],
        ERROR,
        f"every column has at most {max_missing:.0%} missing",
    )

    target_problems = []
    for target in schema.targets:
        if target in frame and frame[target].notna().sum() == 0:
            target_problems.append(f"column '{target}': target has no values")
    report.add("target_present", target_problems, ERROR, "targets have values")

    class_counts: dict[str, int] = {}
    target = schema.classification_target
    if target in frame and frame[target].notna().any():
        counts = frame[target].dropna().astype(str).value_counts()
        class_counts = {str(k): int(v) for k, v in counts.items()}
        class_problems = [
            f"column '{target}': class {label!r} has {n} rows, expected at least {min_class_rows}"
            for label, n in class_counts.items()
            if n < min_class_rows
        ]
        if len(counts) < 2:
            class_problems.insert(0, f"column '{target}': only one class {list(class_counts)}")
        report.add(
            "min_class_rows",
            class_problems,
            ERROR,
            f"every class has at least {min_class_rows} rows",
        )
        minority_share = counts.min() / counts.sum()
        report.add(
            "class_balance",
            []
            if minority_share >= min_class_share
            else [
                f"column '{target}': minority class {counts.idxmin()!r} is {minority_share:.1%} "
                f"of rows (below {min_class_share:.0%}); training weights classes"
            ],
            WARNING,
            f"minority class is {minority_share:.1%} of rows",
        )

    range_cases = _failure_cases(_range_schema(schema, present), typed)
    out_of_range: dict[str, int] = {}
    range_problems = []
    for name, cases in range_cases.groupby("column", sort=False):
        out_of_range[name] = int(cases["index"].nunique())
        range_problems.append(
            f"column '{name}': {out_of_range[name]} values outside {schema.columns[name].allowed()}"
            f" (e.g. {_examples(cases['failure_case'])}); preprocessing treats them as missing"
        )
    report.add("value_ranges", range_problems, WARNING, "all values inside schema ranges")

    report.add(
        "informative_columns",
        _uninformative(typed, schema.features, min_rows=min_class_rows),
        WARNING,
        f"every feature varies in at least {min_class_rows} rows",
    )

    report.add(
        "rare_categories",
        _rare_categories(typed, schema, min_rows=min_class_rows),
        WARNING,
        f"every category value of a feature occurs in at least {min_class_rows} rows",
    )

    report.add(
        "outlier_fences",
        _beyond_fences(
            typed,
            schema,
            iqr_factor=outlier_iqr_factor,
            min_distinct=outlier_min_distinct,
            max_share=max_outlier_share,
        ),
        WARNING,
        f"the outlier fences limit at most {max_outlier_share:.0%} of any column's values",
    )

    n_duplicates = int(frame.duplicated().sum())
    report.add(
        "duplicate_rows",
        [f"{n_duplicates} exact duplicate rows; preprocessing drops them before the split"]
        if n_duplicates
        else [],
        WARNING,
        "no exact duplicate rows",
    )

    report.summary = {
        "rows": len(frame),
        "columns": len(frame.columns),
        "missing_cells": int(frame[present].isna().sum().sum()),
        "duplicate_rows": n_duplicates,
        "class_counts": class_counts,
        "out_of_range": out_of_range,
        "missing_share": {k: round(float(v), 4) for k, v in missing_share.items() if v > 0},
    }
    return report


def validate_file(
    path: str | Path, schema: Schema, *, feedback: str | Path | None = None, **thresholds: Any
) -> ValidationReport:
    """Read a CSV, and the labelled feedback rows that join it if any, and validate
    them as one table; an unreadable file is a failed report, not a crash."""
    frames = []
    for source in (path, feedback):
        if source is None or (source == feedback and not Path(source).exists()):
            continue
        try:
            rows = pd.read_csv(source)
        except (
            OSError,
            pd.errors.ParserError,
            pd.errors.EmptyDataError,
            UnicodeDecodeError,
        ) as err:
            report = ValidationReport()
            report.add("readable_csv", [f"{source}: {err}"], ERROR, "")
            report.summary = {"rows": 0}
            return report
        if source == path or len(rows):  # an empty feedback file adds nothing
            frames.append(rows)
    feedback_rows = len(frames[1]) if len(frames) > 1 else 0
    if feedback_rows:  # only the schema's columns: the feedback file also has prediction ids
        frames[1] = frames[1][[c for c in frames[1].columns if c in schema.required]]
    frame = pd.concat(frames, ignore_index=True) if feedback_rows else frames[0]
    report = validate_frame(frame, schema, **thresholds)
    detail = f"{path} parsed as CSV" + (
        f", with {feedback_rows} feedback rows" if feedback_rows else ""
    )
    report.checks.insert(0, Check("readable_csv", True, ERROR, detail))
    if feedback_rows:
        report.summary["feedback_rows"] = feedback_rows
    return report


def render_html(report: ValidationReport, *, title: str) -> str:
    """A small self-contained HTML page of the report."""
    rows = []
    for check in report.checks:
        status = "PASS" if check.passed else ("FAIL" if check.severity == ERROR else "WARN")
        rows.append(
            f'<tr class="{status.lower()}"><td>{status}</td><td>{html.escape(check.name)}</td>'
            f"<td>{html.escape(check.severity)}</td><td>{html.escape(check.detail)}</td></tr>"
        )
    summary = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in report.summary.items()
    )
    verdict = "PASSED" if report.passed else "FAILED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2rem; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
tr.pass td:first-child {{ color: #1a7f37; }} tr.warn td:first-child {{ color: #9a6700; }}
tr.fail td:first-child {{ color: #cf222e; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(title)}: {verdict}</h1>
<table><tr><th>status</th><th>check</th><th>severity</th><th>detail</th></tr>{"".join(rows)}</table>
<h2>Summary</h2><table>{summary}</table>
</body></html>
"""


def problem_lines(checks: list[Check]) -> list[str]:
    """One line per problem found by the given checks, for the terminal."""
    lines = []
    for check in checks:
        lines.extend(f"{check.name}: {problem}" for problem in check.problems)
    return lines


__all__ = [
    "Check",
    "ValidationReport",
    "coerce_types",
    "problem_lines",
    "render_html",
    "validate_file",
    "validate_frame",
]
