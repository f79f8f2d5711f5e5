import numpy as np
import pytest

from migraine_ml.data.synthetic import (
    SEVERITY_NOISE_SD,
    expected_severity,
    generate_cohort,
    oracle_scores,
)


def test_same_seed_gives_byte_identical_csv():
    first = generate_cohort(rows=500, prevalence=0.3, seed=11).data.to_csv(index=False)
    second = generate_cohort(rows=500, prevalence=0.3, seed=11).data.to_csv(index=False)
    assert first == second
    other = generate_cohort(rows=500, prevalence=0.3, seed=12).data.to_csv(index=False)
    assert other != first


def test_cohort_matches_the_schema_and_the_model(schema):
    cohort = generate_cohort(
        rows=4000, prevalence=0.3, seed=1, missing_rate=0, duplicate_rate=0, entry_error_rate=0
    )
    data = cohort.data
    assert list(data.columns) == list(schema.columns)
    assert abs(cohort.true_probability.mean() - 0.3) < 1e-6
    assert abs(data["migraine_occurrence"].mean() - 0.3) < 0.03
    # the menstrual cycle only for women, severity only with a migraine
    assert (data.loc[data["gender"] == 0, "menstrual_cycle"] == 0).all()
    no_migraine = data["migraine_occurrence"] == 0
    assert (data.loc[no_migraine, "migraine_severity"] == 0).all()
    assert data.loc[~no_migraine, "migraine_severity"].between(1, 10).all()
    for name in schema.continuous_features:
        low, high = schema.columns[name].range
        assert data[name].between(low, high).all(), name


def test_injection_rates():
    data = generate_cohort(
        rows=5000,
        prevalence=0.35,
        seed=2,
        missing_rate=0.05,
        duplicate_rate=0.02,
        entry_error_rate=0.01,
    ).data
    assert len(data) == 5100
    assert data.duplicated().sum() >= 95
    features = data.drop(columns=["migraine_occurrence", "migraine_severity"])
    assert 0.04 < features.isna().mean().mean() < 0.06
    assert data[["migraine_occurrence", "migraine_severity"]].notna().all().all()
    assert (data["sleep_hours"] > 10).sum() >= 3  # tenfold typos such as 70


def test_oracle_is_a_sensible_ceiling():
    oracle = oracle_scores(generate_cohort(rows=3000, prevalence=0.35, seed=5))
    assert 0.75 < oracle["roc_auc"] < 0.9
    assert oracle["accuracy"] > 1 - oracle["prevalence"]  # beats the majority class
    assert 0 < oracle["brier"] < 0.25
    assert oracle["severity_r2"] > 0.2


def test_expected_severity_matches_simulation():
    rng = np.random.default_rng(0)
    mu = np.array([0.0, 3.3, 6.0, 11.0])
    draws = np.clip(np.round(rng.normal(mu, SEVERITY_NOISE_SD, (200_000, 4))), 1, 10)
    np.testing.assert_allclose(expected_severity(mu), draws.mean(axis=0), atol=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 5}, "rows: 5 is too few"),
        ({"prevalence": 1.0}, "prevalence: 1.0 is outside"),
        ({"missing_rate": 1.5}, "missing_rate: 1.5 is outside"),
        ({"duplicate_rate": -0.1}, "duplicate_rate: -0.1 is outside"),
    ],
)
def test_bad_generator_params_are_rejected(kwargs, message):
    args = {"rows": 100, "prevalence": 0.3, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_cohort(**args)
