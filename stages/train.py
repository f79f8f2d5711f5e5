"""train: tune the model zoo with CV on the train split, save the top two per task."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pandas as pd
from dvclive import Live

from migraine_ml import persist
from migraine_ml.data.schema import load_schema
from migraine_ml.modeling import tracking
from migraine_ml.modeling.fastpath import parity
from migraine_ml.modeling.manifest import (
    RANKS,
    leaderboard,
    library_versions,
    model_entry,
    model_file,
)
from migraine_ml.modeling.tasks import Candidate, cv_facts, plan_tasks, rank, train_zoo
from migraine_ml.monitoring.reference import input_profile, predicted_scores, prediction_profile
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("train")


def _git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _progress(candidate: Candidate, position: int, total: int) -> None:
    logger.info(
        "%s %d/%d %-20s cv %s=%.4f ± %.4f  (%.1f s)",
        candidate.task,
        position,
        total,
        candidate.name,
        candidate.scoring,
        candidate.cv_mean,
        candidate.cv_std,
        candidate.fit_seconds,
    )


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--split-dir", required=True, help="raw train rows (parquet)")
    cli.add_argument("--preprocessor", required=True, help="preprocessor (skops)")
    cli.add_argument("--builder", required=True, help="feature builder (skops)")
    cli.add_argument("--models-dir", required=True, help="where the top models go")
    cli.add_argument("--live-dir", required=True, help="dvclive output directory")
    cli.add_argument("--registry", required=True, help="MLflow registry record (JSON)")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    config, seed = params["train"], params["seed"]
    schema = load_schema(args.schema)
    train_path = Path(args.split_dir) / "train.parquet"
    train = pd.read_parquet(train_path)
    steps = [
        ("preprocess", persist.load(args.preprocessor)),
        ("features", persist.load(args.builder)),
    ]
    models_dir = Path(args.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tasks = plan_tasks(schema, train, config, min_class_share=params["validate"]["min_class_share"])

    tags = {"git_commit": _git_commit(), "schema": schema.name}
    manifest = {
        "schema": schema.to_dict(),
        "training_data": {
            "file": str(train_path),
            "md5": persist.file_md5(train_path),
            "rows": len(train),
        },
        "libraries": library_versions(),
        "seed": seed,
        "models": [],
        "leaderboard": [],
        "cv": {},
    }
    reference = {"inputs": input_profile(train, schema), "predictions": {}}
    registry = {}
    # The service's numpy fast path is used only for models that match the
    # scikit-learn pipeline on the test split's inputs (no labels are read).
    parity_rows = pd.read_parquet(Path(args.split_dir) / "test.parquet")
    fast_path = {}
    live = Live(args.live_dir, dvcyaml=None, save_dvc_exp=False, report=None)
    with tracking.parent_run(
        config["experiment"],
        params={k: params[k] for k in ("seed", "features", "train")},
        tags=tags,
    ):
        for task in tasks:
            X = task.rows[schema.features]
            logger.info(
                "%s: tuning %d models on %d rows (%s, %d-fold CV)",
                task.name,
                len(task.models),
                len(X),
                task.scoring,
                config["cv_folds"],
            )
            cv = cv_facts(
                task.name, X=X, y=task.y, groups=task.groups, folds=config["cv_folds"], seed=seed
            )
            manifest["cv"][task.name] = cv
            logger.info("%s CV folds: %s", task.name, cv)
            run_ids = {}

            def done(candidate, position, total, run_ids=run_ids):
                run_ids[candidate.name] = tracking.log_candidate(candidate, tags=tags)
                _progress(candidate, position, total)

            ranked = rank(
                train_zoo(
                    task.name,
                    X=X,
                    y=task.y,
                    groups=task.groups,
                    steps=steps,
                    models=task.models,
                    seed=seed,
                    folds=config["cv_folds"],
                    scoring=task.scoring,
                    class_weight=task.class_weight,
                    max_rows=config["max_rows"],
                    on_done=done,
                )
            )
            manifest["leaderboard"].extend(leaderboard(ranked))
            saved = {}  # rank -> (file, md5)
            for position, candidate in enumerate(ranked[:2]):
                file = model_file(task.name, RANKS[position])
                md5 = persist.save(candidate.pipeline, models_dir / file)
                saved[RANKS[position]] = file, md5
                fast_path[file] = parity(candidate.pipeline, parity_rows, schema)
                manifest["models"].append(
                    model_entry(
                        candidate,
                        rank=RANKS[position],
                        file=file,
                        md5=md5,
                        raw_features=schema.features,
                        classes=task.classes,
                    )
                )
            champion = ranked[0]
            file, md5 = saved[RANKS[0]]
            name = f"{schema.name}-{'classifier' if task.classes else 'regressor'}"
            version = tracking.register_champion(
                champion,
                run_id=run_ids[champion.name],
                registered_name=name,
                trusted_types=persist.trusted_types(models_dir / file),
                input_example=tracking.input_example(X),
            )
            registry[task.name] = {
                "name": name,
                "version": version,
                "alias": tracking.CHAMPION,
                "file": file,
                "md5": md5,
                "tracking_uri": tracking.tracking_uri(),
            }
            reference["predictions"][task.name] = prediction_profile(
                predicted_scores(champion.pipeline, X, task.classes)
            )
            live.log_metric(
                f"{task.name}/best_cv_{task.scoring}", round(champion.cv_mean, 6), plot=False
            )
            live.log_plot(
                f"leaderboard_{task.name}",
                [{"model": c.name, "cv_score": round(c.cv_mean, 6)} for c in ranked],
                x="cv_score",
                y="model",
                template="bar_horizontal",
                title=f"{task.name}: cross-validated {task.scoring}",
            )
    live.end()
    write_json(manifest, models_dir / "manifest.json")
    write_json(reference, models_dir / "reference.json")
    write_json(fast_path, models_dir / "fastpath.json")
    # Registry versions depend on the MLflow store, not on the data: kept out of
    # models/ so equal models keep equal DVC hashes.
    write_json(registry, args.registry)
    for entry in manifest["models"]:
        logger.info(
            "saved %s %s (%s) -> %s", entry["rank"], entry["name"], entry["task"], entry["file"]
        )


if __name__ == "__main__":
    main()
