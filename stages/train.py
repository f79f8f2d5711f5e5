"""train: tune the model zoo with CV on the train split, save the top two per task."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.schema import load_schema
from migraine_ml.modeling import tracking
from migraine_ml.modeling.plan import TrainConfig
from migraine_ml.modeling.training import train_models
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("train")


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--split-dir", required=True, help="raw train rows (parquet)")
    cli.add_argument("--preprocessor", required=True, help="preprocessor (skops)")
    cli.add_argument("--builder", required=True, help="feature builder (skops)")
    cli.add_argument("--models-dir", required=True, help="where the top models go")
    cli.add_argument("--live-dir", required=True, help="dvclive output directory")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    config = TrainConfig.from_params(params)
    schema = load_schema(args.schema)
    train_file = str(Path(args.split_dir) / "train.parquet")
    result = train_models(
        schema=schema,
        train=pd.read_parquet(train_file),
        train_file=train_file,
        parity_rows=pd.read_parquet(Path(args.split_dir) / "test.parquet"),
        preprocessor=persist.load(args.preprocessor),
        builder=persist.load(args.builder),
        config=config,
        params={k: params[k] for k in ("seed", "features", "train")},
        models_dir=Path(args.models_dir),
        tags={"git_commit": tracking.git_commit(), "schema": schema.name},
        on_done=lambda c, i, n: logger.info("%s %d/%d %s", c.task, i, n, c.progress()),
        # `migraine retrain` sets "challenger": an experiment's model is not the champion
        alias=os.environ.get("MIGRAINE_REGISTER_ALIAS", tracking.CHAMPION),
    )
    tracking.log_leaderboards(args.live_dir, result.tasks)
    write_json(result.manifest, Path(args.models_dir) / "manifest.json")
    write_json(result.reference, Path(args.models_dir) / "reference.json")
    fast_path = {file: record.to_dict() for file, record in result.fast_path.items()}
    write_json(fast_path, Path(args.models_dir) / "fastpath.json")


if __name__ == "__main__":
    main()
