"""The synthetic migraine cohort: the embedded default dataset.

This is the one module that names the migraine columns: it *is* the
data-generating model. Everything else reads roles from the schema.

Generating model (one row = one person-day):

Inputs
    age ~ U{18..64}; gender ~ Bernoulli(0.5) (1 = female);
    stress_level = clip(round(N(5.5, 2.2)), 1, 10);
    sleep_hours = clip(N(7.0 - 0.15 (stress - 5.5), 1.1), 4, 10), one decimal;
    sleep_quality = clip(round(1 + 9 * sigmoid(1.1 (sleep_hours - 6.5) - 0.25 (stress - 5.5))
    + N(0, 1.2)), 1, 10);
    hydration ~ U{1..10}; exercise ~ U{0..7}; screen_time ~ U(2, 12);
    caffeine_intake ~ Binomial(5, 0.4); alcohol_intake ~ Binomial(5, 0.2);
    menstrual_cycle ~ Bernoulli(0.25) for women, 0 for men;
    dehydration ~ Bernoulli(sigmoid(-1.5 - 0.5 (hydration - 5.5)));
    the other binary triggers ~ Bernoulli(0.15..0.35);
    weather_pressure ~ clip(N(1012, 9), 980, 1030); humidity ~ U(30, 90);
    temperature_change ~ clip(N(0, 4), -10, 10), one decimal.

Migraine occurrence ~ Bernoulli(sigmoid(b0 + eta)), where eta is
    + 2.2 * sleep_deficit * stress          (interaction, with
                                              sleep_deficit = max(0, 7 - sleep_hours) / 3
                                              and stress = (stress_level - 1) / 9)
    + 0.35 * (stress_level - 5.5) / 2.2
    - 0.12 * (sleep_quality - 5.5)
    + 1.1 * [weather_pressure < 1003]        (a pressure-drop threshold)
    + 0.9 * (temperature_change / 10) ** 2 * 4   (large swings either way)
    + 0.9 * menstrual_cycle                  (women only, by construction)
    + 0.6 * dehydration + 0.45 * missed_meals + 0.35 * bright_light
    + 0.25 * loud_noises + 0.25 * strong_smells + 0.3 * specific_foods
    + 0.5 * neck_pain + 0.3 * weather_changes + 0.15 * physical_activity
    + 0.12 * (caffeine_intake - 2) ** 2      (U-shaped: withdrawal and excess)
    + 0.2 * alcohol_intake
    + 0.06 * (screen_time - 7)
    - 0.08 * (exercise - 3.5)
    - 0.0012 * (age - 40) ** 2               (peaks in mid-life)
    + 0.004 * (humidity - 60)
and b0 is solved so the mean probability equals `prevalence`.

Migraine severity given a migraine = clip(round(N(mu, 1.3)), 1, 10), with
    mu = 3.2 + 2.6 * stress + 1.6 * sleep_deficit + 1.0 * neck_pain
       + 0.8 * [weather_pressure < 1003] + 0.6 * menstrual_cycle + 0.25 * alcohol_intake;
severity is 0 when no migraine occurred.

The true probability and the true expected severity (exactly, over the
rounding and clipping) of each row are known, so :func:`oracle_scores` gives
the best any model could score: the ceiling for evaluation.

Then what real data has is injected at the given rates: missing feature cells,
exact duplicate rows, and entry errors (a value typed ten times too large, as
in `sleep_hours` 70).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    log_loss,
    r2_score,
    roc_auc_score,
)

PRESSURE_DROP_HPA = 1003.0
SEVERITY_NOISE_SD = 1.3
SEVERITY_LEVELS = np.arange(1, 11)
# Columns that can carry an entry error (a tenfold typo) and still be numeric.
ENTRY_ERROR_COLUMNS = ("sleep_hours", "age", "screen_time", "stress_level", "humidity")
TARGETS = ("migraine_occurrence", "migraine_severity")


@dataclass(frozen=True)
class Cohort:
    """A generated cohort: the data as a user would get it, plus the truth."""

    data: pd.DataFrame
    true_probability: np.ndarray  # per row of the clean cohort (before injection)
    true_severity: np.ndarray  # expected severity given a migraine, per clean row
    clean: pd.DataFrame  # the cohort before missing cells, duplicates, entry errors


def _person_days(n: int, rng: np.random.Generator) -> pd.DataFrame:
    stress = np.clip(np.round(rng.normal(5.5, 2.2, n)), 1, 10)
    sleep_hours = np.round(np.clip(rng.normal(7.0 - 0.15 * (stress - 5.5), 1.1, n), 4, 10), 1)
    sleep_quality = np.clip(
        np.round(
            1 + 9 * expit(1.1 * (sleep_hours - 6.5) - 0.25 * (stress - 5.5)) + rng.normal(0, 1.2, n)
        ),
        1,
        10,
    )
    gender = rng.binomial(1, 0.5, n)
    hydration = rng.integers(1, 11, n)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 65, n),
            "gender": gender,
            "sleep_hours": sleep_hours,
            "sleep_quality": sleep_quality.astype(int),
            "stress_level": stress.astype(int),
            "hydration": hydration,
            "exercise": rng.integers(0, 8, n),
            "screen_time": np.round(rng.uniform(2, 12, n), 1),
            "caffeine_intake": rng.binomial(5, 0.4, n),
            "alcohol_intake": rng.binomial(5, 0.2, n),
            "weather_changes": rng.binomial(1, 0.3, n),
            "menstrual_cycle": gender * rng.binomial(1, 0.25, n),
            "dehydration": rng.binomial(1, expit(-1.5 - 0.5 * (hydration - 5.5))),
            "bright_light": rng.binomial(1, 0.25, n),
            "loud_noises": rng.binomial(1, 0.2, n),
            "strong_smells": rng.binomial(1, 0.15, n),
            "missed_meals": rng.binomial(1, 0.3, n),
            "specific_foods": rng.binomial(1, 0.2, n),
            "physical_activity": rng.binomial(1, 0.35, n),
            "neck_pain": rng.binomial(1, 0.2, n),
            "weather_pressure": np.round(np.clip(rng.normal(1012, 9, n), 980, 1030), 1),
            "humidity": np.round(rng.uniform(30, 90, n), 1),
            "temperature_change": np.round(np.clip(rng.normal(0, 4, n), -10, 10), 1),
        }
    )
    return frame


def _sleep_deficit(x: pd.DataFrame) -> np.ndarray:
    return np.maximum(0.0, 7.0 - x["sleep_hours"].to_numpy()) / 3.0


def _stress01(x: pd.DataFrame) -> np.ndarray:
    return (x["stress_level"].to_numpy() - 1) / 9.0


def migraine_logit(x: pd.DataFrame) -> np.ndarray:
    """The linear predictor eta (without intercept) of the generating model."""
    pressure_drop = (x["weather_pressure"].to_numpy() < PRESSURE_DROP_HPA).astype(float)
    return (
        2.2 * _sleep_deficit(x) * _stress01(x)
        + 0.35 * (x["stress_level"] - 5.5) / 2.2
        - 0.12 * (x["sleep_quality"] - 5.5)
        + 1.1 * pressure_drop
        + 0.9 * 4 * (x["temperature_change"] / 10) ** 2
        + 0.9 * x["menstrual_cycle"]
        + 0.6 * x["dehydration"]
        + 0.45 * x["missed_meals"]
        + 0.35 * x["bright_light"]
        + 0.25 * x["loud_noises"]
        + 0.25 * x["strong_smells"]
        + 0.3 * x["specific_foods"]
        + 0.5 * x["neck_pain"]
        + 0.3 * x["weather_changes"]
        + 0.15 * x["physical_activity"]
        + 0.12 * (x["caffeine_intake"] - 2) ** 2
        + 0.2 * x["alcohol_intake"]
        + 0.06 * (x["screen_time"] - 7)
        - 0.08 * (x["exercise"] - 3.5)
        - 0.0012 * (x["age"] - 40) ** 2
        + 0.004 * (x["humidity"] - 60)
    ).to_numpy(dtype=float)


def severity_mean(x: pd.DataFrame) -> np.ndarray:
    """Mean of the latent (unrounded) severity given a migraine."""
    pressure_drop = (x["weather_pressure"].to_numpy() < PRESSURE_DROP_HPA).astype(float)
    return (
        3.2
        + 2.6 * _stress01(x)
        + 1.6 * _sleep_deficit(x)
        + 1.0 * x["neck_pain"].to_numpy()
        + 0.8 * pressure_drop
        + 0.6 * x["menstrual_cycle"].to_numpy()
        + 0.25 * x["alcohol_intake"].to_numpy()
    )


def expected_severity(mu: np.ndarray, sd: float = SEVERITY_NOISE_SD) -> np.ndarray:
    """E[clip(round(N(mu, sd)), 1, 10)]: the best possible severity prediction."""
    # Level k collects the latent mass in [k-0.5, k+0.5), the ends take the tails.
    upper = norm.cdf((SEVERITY_LEVELS[:, None] + 0.5 - mu[None, :]) / sd)
    lower = norm.cdf((SEVERITY_LEVELS[:, None] - 0.5 - mu[None, :]) / sd)
    lower[0] = 0.0
    upper[-1] = 1.0
    return (SEVERITY_LEVELS[:, None] * (upper - lower)).sum(axis=0)


def _intercept_for(eta: np.ndarray, prevalence: float) -> float:
    return brentq(lambda b0: expit(b0 + eta).mean() - prevalence, -30, 30)


def _inject(
    clean: pd.DataFrame,
    rng: np.random.Generator,
    *,
    missing_rate: float,
    duplicate_rate: float,
    entry_error_rate: float,
) -> pd.DataFrame:
    data = clean.copy()
    features = [c for c in data.columns if c not in TARGETS]
    n = len(data)
    for column in ENTRY_ERROR_COLUMNS:
        rows = rng.random(n) < entry_error_rate / len(ENTRY_ERROR_COLUMNS)
        data[column] = data[column].astype(float)
        data.loc[rows, column] = data.loc[rows, column] * 10
    missing = rng.random((n, len(features))) < missing_rate
    values = data[features].astype(float).mask(missing)
    for column in features:
        # Whole-number columns stay whole numbers in the CSV, missing cells empty.
        is_whole = pd.api.types.is_integer_dtype(clean[column])
        data[column] = values[column].astype("Int64") if is_whole else values[column]
    n_duplicates = round(n * duplicate_rate)
    duplicates = data.iloc[rng.choice(n, size=n_duplicates, replace=False)]
    data = pd.concat([data, duplicates], ignore_index=True)
    data = data.iloc[rng.permutation(len(data))].reset_index(drop=True)
    return data


def generate_cohort(
    *,
    rows: int,
    prevalence: float,
    seed: int,
    missing_rate: float = 0.02,
    duplicate_rate: float = 0.01,
    entry_error_rate: float = 0.003,
) -> Cohort:
    """Generate `rows` person-days (before duplicates are added) from the model above."""
    if rows < 10:
        raise ValueError(f"rows: {rows} is too few, expected at least 10")
    if not 0 < prevalence < 1:
        raise ValueError(f"prevalence: {prevalence} is outside (0, 1)")
    for name, rate in (
        ("missing_rate", missing_rate),
        ("duplicate_rate", duplicate_rate),
        ("entry_error_rate", entry_error_rate),
    ):
        if not 0 <= rate < 1:
            raise ValueError(f"{name}: {rate} is outside [0, 1)")
    rng = np.random.default_rng(seed)
    clean = _person_days(rows, rng)
    eta = migraine_logit(clean)
    probability = expit(_intercept_for(eta, prevalence) + eta)
    occurrence = rng.binomial(1, probability)
    mu = severity_mean(clean)
    latent = rng.normal(mu, SEVERITY_NOISE_SD)
    severity = np.clip(np.round(latent), 1, 10).astype(int) * occurrence
    clean["migraine_occurrence"] = occurrence
    clean["migraine_severity"] = severity
    data = _inject(
        clean,
        rng,
        missing_rate=missing_rate,
        duplicate_rate=duplicate_rate,
        entry_error_rate=entry_error_rate,
    )
    return Cohort(
        data=data,
        true_probability=probability,
        true_severity=expected_severity(mu),
        clean=clean,
    )


def oracle_scores(cohort: Cohort) -> dict[str, float | int | str]:
    """Scores of the true generating model on the cohort: the ceiling for any model."""
    y = cohort.clean["migraine_occurrence"].to_numpy()
    p = cohort.true_probability
    had_migraine = y == 1
    severity = cohort.clean["migraine_severity"].to_numpy()[had_migraine]
    return {
        "description": "scores of the true generating model on the clean cohort (the ceiling)",
        "rows": len(y),
        "prevalence": round(float(y.mean()), 6),
        "roc_auc": round(float(roc_auc_score(y, p)), 6),
        "accuracy": round(float(accuracy_score(y, p >= 0.5)), 6),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, p >= 0.5)), 6),
        "log_loss": round(float(log_loss(y, p)), 6),
        "brier": round(float(brier_score_loss(y, p)), 6),
        "severity_r2": round(float(r2_score(severity, cohort.true_severity[had_migraine])), 6),
        "severity_rmse": round(
            float(np.sqrt(np.mean((severity - cohort.true_severity[had_migraine]) ** 2))), 6
        ),
    }
