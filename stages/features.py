"""features: fit the feature builder on the preprocessed train split; write both splits."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.schema import load_schema
from migraine_ml.modeling.features import applicable_config, make_feature_builder, selection_report
from migraine_ml.modeling.tasks import class_labels, task_rows
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("features")


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--in-dir", required=True, help="preprocessed train/test (parquet)")
    cli.add_argument("--out-dir", required=True, help="feature train/test (parquet)")
    cli.add_argument("--builder", required=True, help="fitted feature builder (skops)")
    cli.add_argument("--report", required=True, help="features JSON to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    schema = load_schema(args.schema)

    train = pd.read_parquet(Path(args.in_dir) / "train.parquet")
    test = pd.read_parquet(Path(args.in_dir) / "test.parquet")
    features = [c for c in train.columns if c not in schema.columns or c in schema.features]
    config, skipped = applicable_config(params["features"], features)
    for message in skipped:
        logger.warning("%s", message)
    # Selection scores need one target: the classification one when there is one, on
    # the rows where it is defined, text labels ("basilar", "yes") as codes 0..k-1.
    if schema.classification_target:
        target, task = schema.classification_target, "classification"
        classes = class_labels(train[target], schema.columns[target].values)
    else:
        target, task, classes = schema.regression_target, "regression", None
    rows, y = task_rows(task, schema, train, classes)
    builder = make_feature_builder(**config, task=task, seed=params["seed"])
    builder.fit(rows[features], y)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = [c for c in train.columns if c not in features]
    for name, rows in (("train", train), ("test", test)):
        pd.concat([builder.transform(rows[features]), rows[keep]], axis=1).to_parquet(
            out_dir / f"{name}.parquet"
        )
    persist.save(builder, args.builder)
    report = selection_report(builder) | {"skipped_config": skipped, "target": target}
    write_json(report, args.report)
    logger.info("kept %d features: %s", report["n_features"], ", ".join(report["selected"]))


if __name__ == "__main__":
    main()
