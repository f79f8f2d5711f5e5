"""Small datasets shaped unlike the default cohort, to try the pipeline on "your own" data.

- `headache_diary`: repeated diary entries of 60 patients, a 7-class text
  label (15 to 250 rows per class), integer-coded symptoms (0-3), text
  categories, a constant column, a column positive in one row, duplicates.
  Each patient has a personal symptom offset and mostly one headache type,
  so a row-level split would leak patients into the test rows.
- `yes_no_cohort`: one row per person, a yes/no target, a pain score defined
  only when the answer is yes, and a category value seen in a handful of rows.
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
