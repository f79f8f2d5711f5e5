"""features: fit the feature builder (engineering + selection) on the preprocessed train split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.schema import load_schema
from migraine_ml.modeling.builder import FeatureConfig, fit_feature_builder
from stages.common import parser, read_params, setup_logging, write_json


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--in-dir", required=True, help="preprocessed train split (parquet)")
    cli.add_argument("--builder", required=True, help="fitted feature builder (skops)")
    cli.add_argument("--report", required=True, help="features JSON to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    builder, report = fit_feature_builder(
        pd.read_parquet(Path(args.in_dir) / "train.parquet"),
        load_schema(args.schema),
        FeatureConfig.from_params(params["features"]),
        seed=params["seed"],
    )
    persist.save(builder, args.builder)
    write_json(report, args.report)


if __name__ == "__main__":
    main()
