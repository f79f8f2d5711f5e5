"""Small datasets shaped unlike the default cohort, to try the pipeline on "your own" data.

- `headache_diary`: repeated diary entries of 60 patients, a 7-class text
  label (15 to 250 rows per class), integer-coded symptoms (0-3), text
  categories, a constant column, a column positive in one row, duplicates.
  Each patient has a personal symptom offset and mostly one headache type,
  so a row-level split would leak patients into the test rows.
- `yes_no_cohort`: one row per person, a yes/no target, a pain score defined
  only when the answer is yes, and a category value seen in a handful of rows.
- `clinical_table`: one row per patient of a headache clinic (400 patients), a
  6-class text diagnosis from 55 % of the patients down to 3 % (a dozen), 12
  yes/no symptoms, 4 symptom grades (0-4 or 0-2) where most patients score 0,
  age and attacks per month, a constant column and a few duplicate rows. The
  symptoms add up: each one shifts the log-odds of each diagnosis by a fixed
  amount (binary and graded symptoms, the attack count and age are drawn
  independently given the diagnosis from exponential families), so a plain
  standardised logistic regression is close to the best possible model, and
  the classes overlap enough that none is perfect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DIARY_CLASSES = {  # headache type -> diary entries
    "tension": 250,
    "migraine_without_aura": 160,
    "migraine_with_aura": 110,
    "medication_overuse": 70,
    "cluster": 45,
    "sinus": 25,
    "hemicrania": 15,
}
SYMPTOMS = ("nausea", "photophobia", "phonophobia", "throbbing", "neck_stiffness", "tearing")
# Mean symptom grade (0 none .. 3 severe) per headache type, in SYMPTOMS order.
SYMPTOM_PROFILES = {
    "tension": (0.2, 0.5, 0.5, 0.3, 1.8, 0.1),
    "migraine_without_aura": (2.0, 2.3, 2.0, 2.4, 0.8, 0.2),
    "migraine_with_aura": (1.8, 2.6, 2.2, 2.2, 0.6, 0.3),
    "medication_overuse": (1.0, 1.2, 1.0, 1.2, 1.4, 0.2),
    "cluster": (0.5, 1.5, 0.6, 1.0, 0.3, 2.8),
    "sinus": (0.4, 0.6, 0.3, 1.5, 0.4, 1.0),
    "hemicrania": (0.8, 1.8, 1.0, 2.0, 0.5, 2.2),
}
ATTACK_HOURS = {  # median attack duration per type
    "tension": 6.0,
    "migraine_without_aura": 18.0,
    "migraine_with_aura": 14.0,
    "medication_overuse": 10.0,
    "cluster": 1.0,
    "sinus": 8.0,
    "hemicrania": 0.4,
}


def headache_diary(
    *, seed: int = 0, patients: int = 60, duplicates: int = 8, mixing: float = 0.35
) -> pd.DataFrame:
    """Diary entries of `patients` patients; `mixing` is the share of entries not of the
    patient's usual headache type."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(list(DIARY_CLASSES), list(DIARY_CLASSES.values()))
    # Patients own consecutive runs of the sorted labels (mostly one type each),
    # then a share of entries swap places so every type reaches several patients.
    swap = rng.choice(len(labels), size=int(mixing * len(labels)), replace=False)
    labels[swap] = labels[rng.permutation(swap)]
    patient = np.sort(rng.integers(0, patients, size=len(labels)))
    offset = rng.normal(0, 0.6, size=(patients, len(SYMPTOMS)))  # personal grading habit
    female = rng.random(patients) < 0.65
    profile = np.array([SYMPTOM_PROFILES[label] for label in labels])
    grades = profile + offset[patient] + rng.normal(0, 0.6, size=profile.shape)
    frame = pd.DataFrame(np.clip(np.rint(grades), 0, 3).astype(int), columns=list(SYMPTOMS))
    frame.insert(0, "patient_id", [f"P{p:03d}" for p in patient])
    frame["attack_hours"] = np.round(
        [ATTACK_HOURS[label] * rng.lognormal(0, 0.5) for label in labels], 1
    )
    frame["sleep_last_night"] = np.round(np.clip(rng.normal(6.8, 1.1, len(labels)), 3, 11), 1)
    frame["sex"] = np.where(female[patient], "female", "male")
    overuse = labels == "medication_overuse"
    frame["painkillers"] = np.where(
        overuse,
        rng.choice(["continuing", "reduced"], p=[0.8, 0.2], size=len(labels)),
        rng.choice(["none", "reduced", "continuing"], p=[0.6, 0.3, 0.1], size=len(labels)),
    )
    frame["questionnaire_version"] = 2  # constant: carries no information
    frame["visual_snow"] = 0
    frame.loc[rng.integers(len(frame)), "visual_snow"] = 1  # positive in one row only
    frame.loc[rng.random(len(frame)) < 0.02, "attack_hours"] = np.nan
    frame["headache_type"] = labels
    copies = frame.iloc[rng.choice(len(frame), size=duplicates, replace=False)]
    return pd.concat([frame, copies], ignore_index=True)


def yes_no_cohort(*, seed: int = 0, rows: int = 600) -> pd.DataFrame:
    """One row per person; `headache` is "yes"/"no", `pain_score` 1-10 when yes, else 0."""
    rng = np.random.default_rng(seed)
    stress = rng.integers(1, 11, rows)
    screen = np.round(rng.uniform(1, 12, rows), 1)
    cups = rng.integers(0, 7, rows)
    years = rng.integers(18, 70, rows)
    female = rng.random(rows) < 0.55
    activity = rng.choice(["low", "medium", "high"], p=[0.35, 0.45, 0.2], size=rows)
    region = rng.choice(
        ["north", "south", "east", "west", "islands"], p=[0.3, 0.3, 0.2, 0.19, 0.01], size=rows
    )
    logit = (
        -3.2
        + 0.35 * stress
        + 0.12 * screen
        + 0.25 * np.abs(cups - 2)
        + 0.6 * female
        + np.where(activity == "high", -0.7, 0.0)
    )
    headache = rng.random(rows) < 1 / (1 + np.exp(-logit))
    pain = np.clip(np.rint(2 + 0.5 * stress + 0.2 * screen + rng.normal(0, 1.5, rows)), 1, 10)
    return pd.DataFrame(
        {
            "stress_score": stress,
            "screen_hours": screen,
            "coffee_cups": cups,
            "age_years": years,
            "sex": np.where(female, "female", "male"),
            "activity": activity,
            "region": region,
            "headache": np.where(headache, "yes", "no"),
            "pain_score": np.where(headache, pain, 0).astype(int),
        }
    )


CLINICAL_CLASSES = {  # diagnosis -> patients
    "migraine_without_aura": 220,
    "migraine_with_aura": 72,
    "tension_type": 48,
    "medication_overuse": 28,
    "cluster": 20,
    "vestibular": 12,
}
# Share of patients with each yes/no symptom, per diagnosis in CLINICAL_CLASSES order.
SYMPTOM_SHARES = {
    "nausea": (0.75, 0.65, 0.10, 0.55, 0.25, 0.55),
    "vomiting": (0.35, 0.30, 0.03, 0.20, 0.10, 0.25),
    "photophobia": (0.80, 0.85, 0.25, 0.60, 0.45, 0.65),
    "phonophobia": (0.75, 0.75, 0.25, 0.55, 0.30, 0.60),
    "pulsating": (0.75, 0.65, 0.20, 0.45, 0.20, 0.40),
    "unilateral": (0.60, 0.60, 0.20, 0.40, 0.95, 0.30),
    "worse_on_exertion": (0.75, 0.65, 0.15, 0.45, 0.10, 0.35),
    "pressing_quality": (0.20, 0.15, 0.80, 0.50, 0.10, 0.20),
    "lacrimation": (0.05, 0.05, 0.05, 0.05, 0.85, 0.05),
    "restlessness": (0.05, 0.05, 0.05, 0.05, 0.80, 0.05),
    "motion_sickness": (0.15, 0.20, 0.10, 0.15, 0.05, 0.75),
    "frequent_painkillers": (0.15, 0.15, 0.15, 0.85, 0.10, 0.10),
}
# Symptom grades 0..top: P(grade g | diagnosis) is proportional to exp(tilt * g), so a
# negative tilt keeps most patients at 0 and each grade step adds the same log-odds.
GRADES = {  # grade -> (top grade, tilt per diagnosis in CLINICAL_CLASSES order)
    "aura_score": (4, (-2.4, -0.2, -2.5, -2.3, -2.5, -1.2)),
    "neck_pain_grade": (4, (-2.4, -2.4, 0.0, -0.8, -2.3, -1.5)),
    "vertigo_grade": (4, (-2.0, -1.5, -2.5, -2.0, -2.5, 0.6)),
    "autonomic_grade": (2, (-1.8, -1.8, -2.5, -2.0, 1.5, -2.0)),
}
AGE_MEANS = (38, 36, 42, 45, 40, 46)  # years, per diagnosis; spread 12 for all
ATTACK_RATES = (4, 3, 8, 18, 20, 5)  # attacks per month beyond the first, per diagnosis


def _grades(rng: np.random.Generator, tilt: np.ndarray, top: int) -> np.ndarray:
    """One grade 0..top per row, with P(g) proportional to exp(tilt * g)."""
    weights = np.exp(np.outer(tilt, np.arange(top + 1)))
    cumulative = (weights / weights.sum(axis=1, keepdims=True)).cumsum(axis=1)
    return (rng.random(len(tilt))[:, None] > cumulative[:, :-1]).sum(axis=1)


def clinical_table(*, seed: int = 0, duplicates: int = 4) -> pd.DataFrame:
    """One row per patient of a headache clinic; `diagnosis` is one of CLINICAL_CLASSES.

    `duplicates` rows are entered twice (exact copies, patient id included).
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(list(CLINICAL_CLASSES), list(CLINICAL_CLASSES.values())))
    kind = np.array([list(CLINICAL_CLASSES).index(label) for label in labels])
    frame = pd.DataFrame({"patient_id": [f"C{i:04d}" for i in range(1, len(labels) + 1)]})
    ages = np.rint(rng.normal(np.take(AGE_MEANS, kind), 12))
    frame["age_years"] = np.clip(ages, 18, 80).astype(int)
    for name, shares in SYMPTOM_SHARES.items():
        frame[name] = (rng.random(len(labels)) < np.take(shares, kind)).astype(int)
    for name, (top, tilts) in GRADES.items():
        frame[name] = _grades(rng, np.take(tilts, kind), top)
    frame["attacks_per_month"] = 1 + rng.poisson(np.take(ATTACK_RATES, kind))
    frame["form_version"] = 3  # constant: carries no information
    frame["diagnosis"] = labels
    copies = frame.iloc[rng.choice(len(frame), size=duplicates, replace=False)]
    return pd.concat([frame, copies], ignore_index=True)
