"""The served pipeline: what train saves, the fast path replays and the service loads.

Every saved model is one fitted scikit-learn `Pipeline`: the preprocessor, the
feature builder and the estimator, so training and serving cannot disagree.
The step names are a contract between the layers (the fast path, the manifest,
the zoo's search-space prefixes and the reports find steps by them): this
module owns them and every reader imports them from here.
"""

from __future__ import annotations

from typing import Any

from joblib import Memory
from sklearn.pipeline import Pipeline

# The ranks of the saved models of a task (models/<classifier|regressor>-<rank>.skops):
# the top two by cross-validation, and the reference model (a default logistic or
# linear regression on the validated columns; also the candidate's name).
CHAMPION = "champion"
RUNNER_UP = "runner_up"
REFERENCE = "reference"
RANKS = (CHAMPION, RUNNER_UP)

# The served pipeline's steps.
PREPROCESS = "preprocess"
FEATURES = "features"
MODEL = "model"

# The preprocessor's steps (migraine_ml.data.preprocess.make_preprocessor).
ENTRY_ERRORS = "entry_errors"
OUTLIERS = "outliers"
COLUMNS = "columns"

# The feature builder's steps (migraine_ml.modeling.features.make_feature_builder).
INDICES = "indices"
INTERACTIONS = "interactions"
POWERS = "powers"
BINS = "bins"
SELECT = "select"


def served_pipeline(
    preprocessor: Any, builder: Any, model: Any, *, memory: Memory | None = None
) -> Pipeline:
    """The one shape of every saved model: preprocess -> features -> model."""
    return Pipeline(
        [(PREPROCESS, preprocessor), (FEATURES, builder), (MODEL, model)], memory=memory
    )
