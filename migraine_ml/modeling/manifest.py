"""What `models/manifest.json` says about each saved model and the whole leaderboard."""

from __future__ import annotations

import importlib
import platform
from typing import Any

from migraine_ml.modeling.tuning import Candidate
from migraine_ml.pipeline import FEATURES, SELECT

LIBRARIES = ("sklearn", "xgboost", "lightgbm", "numpy", "pandas", "scipy", "skops")


def library_versions() -> dict[str, str]:
    """Versions a loaded model depends on (module names: xgboost ships as xgboost-cpu)."""
    versions = {lib: importlib.import_module(lib).__version__ for lib in LIBRARIES}
    return {"python": platform.python_version()} | versions


def model_file(task: str, rank: str) -> str:
    role = "classifier" if task == "classification" else "regressor"
    return f"{role}-{rank}.skops"


def engineered_features(candidate: Candidate) -> list[str]:
    """The columns the estimator sees, after feature engineering and selection."""
    return list(candidate.pipeline.named_steps[FEATURES].named_steps[SELECT].selected_)


def model_entry(
    candidate: Candidate,
    *,
    rank: str,
    file: str,
    md5: str,
    raw_features: list[str],
    classes: list[Any] | None,
) -> dict[str, Any]:
    entry = {
        "name": candidate.name,
        "task": candidate.task,
        "rank": rank,
        "file": file,
        "md5": md5,
        "cv": {
            "scoring": candidate.scoring,
            "mean": round(candidate.cv_mean, 6),
            "std": round(candidate.cv_std, 6),
        },
        "params": candidate.params,
        "raw_features": raw_features,
        "model_features": engineered_features(candidate),
        "notes": candidate.notes,
    }
    if classes is not None:
        entry["classes"] = classes
    return entry


def leaderboard(candidates: list[Candidate]) -> list[dict[str, Any]]:
    return [c.summary() for c in candidates]
