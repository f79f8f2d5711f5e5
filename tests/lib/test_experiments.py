import re

import pytest

from migraine_ml.experiments import SweepError, keep_pattern, swept_parameters


def test_the_table_keeps_every_swept_parameter_by_its_whole_name():
    pattern = re.compile(keep_pattern(["features.n_features=10,30", "train.cv_folds=3,5"]))
    for column in ("Experiment", "features.n_features", "train.cv_folds", "gate_passed"):
        assert pattern.match(column), column
    # DVC matches the whole column name: a bare 'n_features' would match nothing
    assert not pattern.match("features.n_features_extra")
    assert not pattern.match("features.bins")


@pytest.mark.parametrize("bad", ["features.n_features", "=10,30", ""])
def test_a_grid_entry_without_a_parameter_is_refused(bad):
    with pytest.raises(SweepError, match="is not <param>=<value>"):
        swept_parameters([bad])


def test_params_file_prefix_is_dropped():
    assert swept_parameters(["params.yaml:seed=1,2"]) == ["seed"]
