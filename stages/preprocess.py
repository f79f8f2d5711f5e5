"""preprocess: drop duplicates, split train/test, fit the preprocessor on train only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.preprocess import preprocess_data
from migraine_ml.data.schema import load_schema
from migraine_ml.data.validation import coerce_types
from migraine_ml.retraining.feedback import read_feedback
from stages.common import parser, read_params, setup_logging, write_json


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--data", required=True, help="validated CSV")
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--feedback", help="labelled feedback CSV (migraine retrain)")
    cli.add_argument("--split-dir", required=True, help="raw train/test rows (parquet)")
    cli.add_argument("--out-dir", required=True, help="preprocessed train/test (parquet)")
    cli.add_argument("--preprocessor", required=True, help="fitted preprocessor (skops)")
    cli.add_argument("--report", required=True, help="summary JSON to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    schema = load_schema(args.schema)
    result = preprocess_data(
        coerce_types(pd.read_csv(args.data), schema)[schema.required],
        schema,
        seed=params["seed"],
        **params["preprocess"],
        feedback=coerce_types(read_feedback(args.feedback, schema), schema)
        if args.feedback
        else None,
    )
    for directory in (args.split_dir, args.out_dir):
        Path(directory).mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", result.train), ("test", result.test)):
        rows.to_parquet(Path(args.split_dir) / f"{name}.parquet")
        result.transformed(rows).to_parquet(Path(args.out_dir) / f"{name}.parquet")
    persist.save(result.preprocessor, args.preprocessor)
    write_json(result.summary, args.report)


if __name__ == "__main__":
    main()
