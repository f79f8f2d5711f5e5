"""evaluate: the saved models on the held-out test split, against baseline and ceiling."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from migraine_ml import persist
from migraine_ml.data.schema import load_schema
from migraine_ml.evaluation.evaluate import EvaluateConfig, Procedure, evaluate_champions
from migraine_ml.evaluation.plots import log_plots
from migraine_ml.evaluation.report import render_report
from migraine_ml.modeling.plan import TrainConfig
from stages.common import parser, read_params, setup_logging, write_json


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--data", required=True, help="the CSV the models were built from")
    cli.add_argument("--split-dir", required=True, help="raw train/test rows (parquet)")
    cli.add_argument("--models-dir", required=True, help="saved models and manifest")
    cli.add_argument("--preprocessor", required=True, help="preprocessor (skops), for small data")
    cli.add_argument("--builder", required=True, help="feature builder (skops), for small data")
    cli.add_argument("--oracle", required=True, help="oracle scores of the generated cohort")
    cli.add_argument("--metrics", required=True, help="metrics JSON (for dvc metrics)")
    cli.add_argument("--details", required=True, help="full evaluation JSON")
    cli.add_argument("--gate", required=True, help="quality gate JSON")
    cli.add_argument("--html", required=True, help="the HTML report")
    cli.add_argument("--live-dir", required=True, help="dvclive plot directory")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    models_dir = Path(args.models_dir)
    evaluation = evaluate_champions(
        schema=load_schema(args.schema),
        manifest=json.loads((models_dir / "manifest.json").read_text()),
        models_dir=models_dir,
        train=pd.read_parquet(Path(args.split_dir) / "train.parquet"),
        test=pd.read_parquet(Path(args.split_dir) / "test.parquet"),
        data_path=args.data,
        oracle_path=Path(args.oracle),
        config=EvaluateConfig.from_params(params["evaluate"], seed=params["seed"]),
        procedure=Procedure(
            persist.load(args.preprocessor),
            persist.load(args.builder),
            TrainConfig.from_params(params),
        ),
    )
    log_plots(args.live_dir, evaluation)
    write_json(evaluation.metrics(), args.metrics)
    write_json(evaluation.to_dict(), args.details)
    write_json(evaluation.gate.to_dict(), args.gate)
    Path(args.html).write_text(render_report(evaluation), encoding="utf-8")


if __name__ == "__main__":
    main()
