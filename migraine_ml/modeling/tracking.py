"""MLflow tracking: one parent run per training, a child run per candidate, the registry.

The store defaults to `sqlite:///mlflow.db` (MLflow 3 refuses a plain file
store); MLFLOW_TRACKING_URI points it elsewhere.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient

from migraine_ml.modeling.tuning import Candidate

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHAMPION = "champion"
MODEL_MD5_TAG = "model_md5"
# What a logged pipeline needs to load elsewhere (`mlflow models serve`). Stated,
# not inferred: inference re-imports the model in a subprocess and costs seconds.
SERVING_REQUIREMENTS = {
    "scikit-learn": "sklearn",
    "skops": "skops",
    "xgboost-cpu": "xgboost",
    "lightgbm": "lightgbm",
    "pandas": "pandas",
    "numpy": "numpy",
    "scipy": "scipy",
}


def serving_requirements() -> list[str]:
    return [
        f"{dist}=={importlib.import_module(module).__version__}"
        for dist, module in SERVING_REQUIREMENTS.items()
    ]


def git_commit() -> str:
    """The commit the run was made from, for the runs' tags ("unknown" outside git)."""
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as dotted keys, the way `dvc params diff` shows them."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, prefix=f"{name}.")
        else:
            flat[name] = str(value)[:500]
    return flat


@contextmanager
def parent_run(experiment: str, *, params: dict[str, Any], tags: dict[str, str]) -> Iterator:
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="train", tags=tags) as run:
        mlflow.log_params(flatten(params))
        yield run


def log_candidate(candidate: Candidate, *, tags: dict[str, str]) -> str:
    """One nested run per tuned candidate; returns its run id."""
    with mlflow.start_run(
        run_name=f"{candidate.task}/{candidate.name}", nested=True, tags=tags
    ) as run:
        mlflow.log_params({f"model.{k}": v for k, v in candidate.params.items()})
        mlflow.log_params(
            {
                "task": candidate.task,
                "model": candidate.name,
                "scoring": candidate.scoring,
                "n_iter": candidate.n_iter,
            }
        )
        mlflow.log_metrics(
            {
                "cv_mean": candidate.cv_mean,
                "cv_std": candidate.cv_std,
                "fit_seconds": candidate.fit_seconds,
            }
        )
        if candidate.notes:
            mlflow.set_tag("notes", "; ".join(candidate.notes))
        return run.info.run_id


def input_example(X: pd.DataFrame) -> pd.DataFrame:
    """Three input rows with numeric columns as float: clients may send 7.5 for an int."""
    example = X.head(3).copy()
    numeric = example.select_dtypes("number").columns
    example[numeric] = example[numeric].astype(float)
    return example


def register_champion(
    candidate: Candidate,
    *,
    run_id: str,
    registered_name: str,
    trusted_types: list[str],
    input_example: pd.DataFrame,
    model_md5: str,
    alias: str = CHAMPION,
) -> str:
    """Log the pipeline under its candidate run, register it, alias it `alias`
    (`champion`; a retraining's challenger is `challenger` until it is promoted).

    The version is tagged with the saved model file's md5, so the models in a
    commit's dvc.lock can be found in any MLflow store without a local record.
    """
    # Served through pyfunc (e.g. `mlflow models serve`), a classifier should
    # answer with probabilities, not bare labels.
    is_classifier = candidate.task == "classification"
    with mlflow.start_run(run_id=run_id, nested=True):
        info = mlflow.sklearn.log_model(
            candidate.pipeline,
            name="model",
            serialization_format="skops",
            skops_trusted_types=trusted_types,
            input_example=input_example,
            registered_model_name=registered_name,
            pyfunc_predict_fn="predict_proba" if is_classifier else "predict",
            pip_requirements=serving_requirements(),
            # the pipeline's own transformers live in this package (migraine_ml/)
            code_paths=[str(Path(__file__).resolve().parents[1])],
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(registered_name, version, MODEL_MD5_TAG, model_md5)
    client.set_registered_model_alias(registered_name, alias, version)
    logger.info("registered %s version %s as '%s'", registered_name, version, alias)
    return version


def log_leaderboards(live_dir: str | Path, tasks: list[Any]) -> None:
    """dvclive's view of a training: the best CV score per task and a leaderboard plot.

    Args:
        tasks: `training.TaskResult`s (name, scoring, ranked candidates).
    """
    from dvclive import Live  # imported here: only the train stage logs to dvclive

    live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
    for task in tasks:
        live.log_metric(
            f"{task.name}/best_cv_{task.scoring}", round(task.ranked[0].cv_mean, 6), plot=False
        )
        live.log_plot(
            f"leaderboard_{task.name}",
            [{"model": c.name, "cv_score": round(c.cv_mean, 6)} for c in task.ranked],
            x="cv_score",
            y="model",
            template="bar_horizontal",
            title=f"{task.name}: cross-validated {task.scoring}",
        )
    live.end()
