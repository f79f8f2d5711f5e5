"""schema: write a draft schema for a CSV, to review before running the pipeline on it."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from migraine_ml.data.inference import InferenceError, infer_schema, to_yaml
from stages.common import setup_logging

logger = logging.getLogger("schema")


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--data", required=True, help="the CSV to describe")
    cli.add_argument("--target", help="the column to classify")
    cli.add_argument("--regression-target", help="a numeric column to regress on")
    cli.add_argument("--group", help="a patient/subject id: its rows never straddle a split")
    cli.add_argument("--out", required=True, help="the schema YAML to write")
    cli.add_argument("--force", action="store_true", help="overwrite an existing --out")
    args = cli.parse_args()
    setup_logging()
    out = Path(args.out)
    if out.exists() and not args.force:
        # the user may have edited it: never overwrite a reviewed schema silently
        sys.exit(f"schema: {out} exists; pass --force (make schema ... FORCE=1) to overwrite it")
    try:
        frame = pd.read_csv(args.data)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        sys.exit(f"schema: cannot read {args.data}: {err}")
    try:
        inferred = infer_schema(
            frame,
            target=args.target,
            regression_target=args.regression_target,
            group=args.group,
            name=out.stem,
        )
    except InferenceError as err:
        sys.exit(f"schema: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_yaml(inferred, source=args.data, rows=len(frame)), encoding="utf-8")
    schema = inferred.schema
    roles = {
        role: [c.name for c in schema.columns.values() if c.role == role]
        for role in ("classification_target", "regression_target", "group", "id")
    }
    logger.info(
        "wrote %s: %d features (%d numeric, %d category)%s",
        out,
        len(schema.features),
        sum(schema.columns[c].is_numeric for c in schema.features),
        sum(schema.columns[c].dtype == "category" for c in schema.features),
        "".join(f"; {role}: {', '.join(names)}" for role, names in roles.items() if names),
    )
    for name in inferred.skipped:
        logger.warning("left out '%s': empty in every row", name)
    logger.info(
        "review it (ranges, values, roles), then: dvc exp run -S data.path=%s -S data.schema=%s",
        args.data,
        out,
    )


if __name__ == "__main__":
    main()
