"""preprocess: drop duplicates, split train/test, fit the preprocessor on train only."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.preprocess import (
    drop_unusable_rows,
    make_preprocessor,
    preprocess_summary,
    split_train_test,
)
from migraine_ml.data.schema import load_schema
from migraine_ml.data.validation import coerce_types
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("preprocess")


def _transformed(preprocessor, rows: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    features = preprocessor.transform(rows)
    return pd.concat([features, rows[keep]], axis=1)


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--data", required=True, help="validated CSV")
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--split-dir", required=True, help="raw train/test rows (parquet)")
    cli.add_argument("--out-dir", required=True, help="preprocessed train/test (parquet)")
    cli.add_argument("--preprocessor", required=True, help="fitted preprocessor (skops)")
    cli.add_argument("--report", required=True, help="summary JSON to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    config = params["preprocess"]
    schema = load_schema(args.schema)

    raw = coerce_types(pd.read_csv(args.data), schema)[schema.required]
    usable, dropped = drop_unusable_rows(raw, schema)
    train, test = split_train_test(
        usable,
        target=schema.classification_target,
        group=schema.group,
        test_size=config["test_size"],
        seed=params["seed"],
    )
    preprocessor = make_preprocessor(
        schema,
        outlier_iqr_factor=config["outlier_iqr_factor"],
        outlier_strategy=config["outlier_strategy"],
        scale=config["scale"],
    ).fit(train[schema.features])

    keep = [c for c in schema.required if c not in schema.features]
    for directory in (args.split_dir, args.out_dir):
        Path(directory).mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        rows.reset_index(drop=True).to_parquet(Path(args.split_dir) / f"{name}.parquet")
        _transformed(preprocessor, rows, keep).reset_index(drop=True).to_parquet(
            Path(args.out_dir) / f"{name}.parquet"
        )
    persist.save(preprocessor, args.preprocessor)
    summary = preprocess_summary(
        preprocessor, train=train, test=test, dropped=dropped, group=schema.group
    )
    write_json(summary, args.report)
    logger.info("dropped %s; %s", dropped, summary["split"])


if __name__ == "__main__":
    main()
