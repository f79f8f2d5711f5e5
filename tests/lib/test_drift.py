import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency
from sklearn.linear_model import LogisticRegression

from migraine_ml.data.synthetic import generate_cohort
from migraine_ml.monitoring.drift import (
    WINDOW_TOO_SMALL,
    DriftReference,
    category_key,
    check_drift,
    performance_drift,
    psi,
)
from migraine_ml.monitoring.reference import (
    INPUTS,
    PREDICTIONS,
    ROWS,
    SAMPLE,
    input_profile,
    predicted_scores,
    prediction_profile,
    prediction_profiles,
)

TRAIN_ROWS = 8000  # the default cohort's size


def window(rows: int, seed: int) -> pd.DataFrame:
    """`rows` fresh person-days from the generator that made the reference (same injections)."""
    return generate_cohort(rows=rows, prevalence=0.35, seed=seed).data.iloc[:rows].copy()


@pytest.fixture(scope="module")
def training():
    return generate_cohort(rows=TRAIN_ROWS, prevalence=0.35, seed=0)


@pytest.fixture(scope="module")
def reference(training, schema):
    """What train writes, from the training rows; the true probability stands in for a model."""
    probability = training.true_probability
    return {
        INPUTS: input_profile(training.data, schema),
        PREDICTIONS: {
            "classification": prediction_profiles({"0": 1 - probability, "1": probability})
        },
    }


@pytest.fixture(scope="module")
def prepared(reference):
    return DriftReference.from_dict(reference)


# --- PSI ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference_shares", "current_shares", "expected"),
    [
        # (0.4 - 0.5) ln(0.4/0.5) + (0.4 - 0.3) ln(0.4/0.3) + (0.2 - 0.2) ln(1)
        #   = 0.1 * 0.223144 + 0.1 * 0.287682 + 0 = 0.051083
        ([0.5, 0.3, 0.2], [0.4, 0.4, 0.2], 0.1 * math.log(0.5 / 0.4) + 0.1 * math.log(0.4 / 0.3)),
        # an empty reference bin counts as the floor 1e-4:
        # (0.5 - 0.5) ln(1) + (0.4 - 0.5) ln(0.4/0.5) + (0.1 - 0.0001) ln(0.1/0.0001)
        #   = 0 + 0.022314 + 0.0999 * 6.907755 = 0.712399
        ([0.5, 0.5, 0.0], [0.5, 0.4, 0.1], 0.1 * math.log(1.25) + 0.0999 * math.log(1000)),
        ([0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], 0.0),
    ],
)
def test_psi_matches_the_hand_computed_value(reference_shares, current_shares, expected):
    assert psi(reference_shares, current_shares) == pytest.approx(expected, abs=1e-12)


def test_psi_hand_values_written_out():
    assert psi([0.5, 0.3, 0.2], [0.4, 0.4, 0.2]) == pytest.approx(0.051083, abs=1e-6)
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) == pytest.approx(0.712399, abs=1e-6)


def test_psi_needs_one_share_per_bin_on_both_sides():
    with pytest.raises(ValueError, match="3 reference shares but 2 current shares"):
        psi([0.5, 0.3, 0.2], [0.5, 0.5])


# --- false alarms -----------------------------------------------------------------------


def test_undrifted_windows_rarely_flag_anything(prepared):
    # DRIFT_WINDOWS=1000 measures the rate on more windows (about 2 minutes)
    windows = int(os.environ.get("DRIFT_WINDOWS", "100"))
    flagged = {}
    for seed in range(1, windows + 1):
        report = check_drift(prepared, window(500, seed))
        if report.drifted:
            flagged[seed] = report.drifted_features
    # 5 of these 100 windows; 31 of 1,000 (seeds 1-1000; 44 while the chi-square took the
    # training shares as exact), all of them one binary feature's chi-square test, none by
    # PSI (max 0.07) or KS.
    assert len(flagged) / windows <= 0.05, flagged


# --- input drift ------------------------------------------------------------------------


@pytest.mark.parametrize("feature", ["sleep_hours", "weather_pressure", "age", "stress_level"])
def test_a_half_sd_shift_is_flagged_in_the_first_full_window_and_only_there(
    prepared, training, feature
):
    first_full = window(200, seed=101)  # min_window rows: the first window a check judges
    sd = training.clean[feature].std()
    first_full[feature] = first_full[feature] + 0.5 * sd

    report = check_drift(prepared, first_full)

    assert report.drifted_features == [feature]
    drifted = report.to_dict()["features"][feature]
    assert drifted["ks_p"] < report.test_alpha
    assert drifted["effect"] == pytest.approx(0.5, abs=0.15)


def test_a_binary_share_shift_is_flagged_by_its_chi_square_test(prepared, reference):
    live = window(500, seed=202)
    live["weather_changes"] = np.random.default_rng(0).binomial(1, 0.45, len(live))  # 0.30 before

    report = check_drift(prepared, live)

    assert "weather_changes" in report.drifted_features
    shifted = next(f for f in report.features if f.name == "weather_changes")
    # PSI alone (0.1 ln 1.5 + ... ~ 0.1) would only warn: the test and its effect decide
    assert shifted.psi < 0.2
    assert shifted.chi2_p < report.test_alpha and shifted.effect >= 0.1
    # two-sample: the live counts against the training counts (shares * rows), not against
    # shares taken as exact
    counts = live["weather_changes"].value_counts().sort_index()
    profile = reference[INPUTS]["weather_changes"]
    trained = [profile["shares"]["0"] * profile[ROWS], profile["shares"]["1"] * profile[ROWS]]
    table = np.array([counts.to_numpy(), np.round(trained)])
    expected = chi2_contingency(table, correction=False).pvalue
    assert shifted.chi2_p == pytest.approx(expected, rel=1e-9)


def category_frame(rows: int, region_shares: dict[str, float], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], rows),
            "pills": rng.choice(["none", "reduced", "continuing"], rows),
            "region": rng.choice(list(region_shares), rows, p=list(region_shares.values())),
            "age": rng.integers(18, 91, rows),
        }
    )


@pytest.fixture(scope="module")
def category_reference(category_schema):
    """Text categories; 'islands' never occurs in the training rows."""
    train = category_frame(5000, {"north": 0.6, "south": 0.4}, seed=0)
    return {INPUTS: input_profile(train, category_schema), PREDICTIONS: {}}


@pytest.mark.parametrize(
    ("region_shares", "flagged"),
    [
        ({"north": 0.6, "south": 0.4}, []),
        ({"north": 0.45, "south": 0.55}, ["region"]),  # a frequency shift
        ({"north": 0.5, "south": 0.3, "islands": 0.2}, ["region"]),  # a value unseen in training
    ],
)
def test_a_category_frequency_shift_is_flagged(category_reference, region_shares, flagged):
    report = check_drift(category_reference, category_frame(500, region_shares, seed=1))
    assert report.drifted_features == flagged


def test_an_unseen_value_is_its_own_psi_bin_but_one_row_of_it_is_no_drift(category_reference):
    live = category_frame(500, {"north": 0.6, "south": 0.4}, seed=2)
    live.loc[0, "region"] = "islands"

    report = check_drift(category_reference, live)

    region = next(f for f in report.features if f.name == "region")
    # its own PSI bin: (1/500 - 0.0001) ln((1/500) / 0.0001) = 0.0019 * 2.9957 ~ 0.0057 of it;
    # for the chi-square it is pooled with 'south' (expected 0 < 5 rows)
    assert region.psi > 0.0057
    assert not region.drift and region.chi2_p > 0.05


# Reference files written before category_key spelled binary values "0.0" and "1.0" (the
# train split read them as floats), while live records send 0 and 1: both still match.
@pytest.mark.parametrize("spelling", [int, float, str, lambda v: f"{float(v)}"])
def test_category_values_match_whatever_their_spelling(reference, spelling):
    as_floats = {
        name: {**profile, "shares": {f"{float(k)}": v for k, v in profile["shares"].items()}}
        if profile["kind"] == "categorical"
        else profile
        for name, profile in reference[INPUTS].items()
    }
    live = window(500, seed=3)
    live["gender"] = [spelling(v) if not pd.isna(v) else None for v in live["gender"]]

    report = check_drift({INPUTS: as_floats}, live)

    gender = next(f for f in report.features if f.name == "gender")
    assert gender.psi < 0.01 and not gender.drift
    assert category_key(1) == category_key("1.0") == category_key(1.0) == "1"
    assert category_key("female") == "female"


def test_a_tiny_shift_in_a_huge_window_is_not_flagged(training, schema):
    # The KS test would flag it: here the reference sample is every training value (the
    # 500-value sample train saves caps KS's power at ~500 rows, so the floor would not
    # even be needed); only the effect floor keeps a 0.02-sd shift from being "drift".
    train = generate_cohort(rows=100_000, prevalence=0.35, seed=0).data
    profile = input_profile(train, schema)
    feature = "weather_pressure"
    profile[feature][SAMPLE] = np.sort(train[feature].dropna().to_numpy(dtype=float))
    reference = DriftReference.from_dict({INPUTS: profile})
    live = generate_cohort(rows=100_000, prevalence=0.35, seed=1).data
    live[feature] = live[feature] + 0.02 * training.clean[feature].std()

    report = check_drift(reference, live)

    shifted = next(f for f in report.features if f.name == feature)
    assert shifted.ks_p < report.test_alpha  # significant after Bonferroni
    assert shifted.effect < 0.1 and shifted.psi < 0.1
    assert report.drifted_features == []
    assert check_drift(reference, live, effect_floor=0).drifted_features == [feature]


# --- predictions and performance ---------------------------------------------------------


def test_prediction_drift_is_psi_of_each_output(prepared):
    live = window(500, seed=4)
    undrifted = generate_cohort(rows=500, prevalence=0.35, seed=4).true_probability
    higher = np.sqrt(undrifted)
    same = check_drift(
        prepared, live, predictions={"classification": {"0": 1 - undrifted, "1": undrifted}}
    )
    # the outputs in any spelling of the class
    moved = check_drift(
        prepared, live, predictions={"classification": {0: 1 - higher, 1.0: higher}}
    )

    (unchanged,) = same.prediction
    assert all(o.psi < 0.1 for o in unchanged.outputs)
    assert not unchanged.drift and not same.drifted
    (shifted,) = moved.prediction
    assert [o.output for o in shifted.outputs] == ["0", "1"]
    assert all(o.psi > 0.2 and o.drift for o in shifted.outputs)
    assert shifted.drift and moved.drifted and shifted.rows == 500
    assert shifted.outputs[1].mean > shifted.outputs[1].reference_mean
    assert moved.drifted_features == []  # the inputs did not move
    body = moved.to_dict()["prediction"]["classification"]
    assert (body["rows"], body["drift"], body["warning"]) == (500, True, False)
    assert set(body["outputs"]) == {"0", "1"}
    assert set(body["outputs"]["1"]) == {"psi", "mean", "reference_mean", "drift", "warning"}


def test_prediction_outputs_must_be_in_the_reference(prepared, reference):
    live = window(200, seed=4)
    scores = np.full(200, 0.3)
    with pytest.raises(ValueError, match="no reference for task 'regression'"):
        check_drift(prepared, live, predictions={"regression": {"value": scores}})
    with pytest.raises(
        ValueError,
        match=r"predictions\['classification'\]: no reference for output '2', "
        "expected one of '0', '1'",
    ):
        check_drift(prepared, live, predictions={"classification": {"2": scores}})
    with pytest.raises(ValueError, match=r"got ndarray, expected \{output: scores\}"):
        check_drift(prepared, live, predictions={"classification": scores})
    # a reference from before per-class profiles: one profile per task
    old = {**reference, PREDICTIONS: {"classification": prediction_profile(scores)}}
    with pytest.raises(ValueError, match=r"predictions\['classification'\] is not \{output"):
        DriftReference.from_dict(old)


def three_classes(rows: int, seed: int, aura_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(aura_shift, 1, rows), "z": rng.normal(size=rows)})
    noise = rng.normal(0, 0.5, (rows, 2))
    X["label"] = np.where(
        X["x"] + noise[:, 0] > 1, "aura", np.where(X["z"] + noise[:, 1] > 0, "tension", "none")
    )
    return X


def test_a_shift_in_one_class_probability_is_flagged_for_that_output():
    classes = ["none", "aura", "tension"]
    train = three_classes(4000, seed=0)
    model = LogisticRegression().fit(train[["x", "z"]], train["label"].map(classes.index))
    reference = {
        INPUTS: {},
        PREDICTIONS: {
            "classification": prediction_profiles(
                predicted_scores(model, train[["x", "z"]], classes)
            )
        },
    }
    assert set(reference[PREDICTIONS]["classification"]) == set(classes)

    def check(live: pd.DataFrame):
        scores = predicted_scores(model, live[["x", "z"]], classes)
        (task,) = check_drift(reference, live, predictions={"classification": scores}).prediction
        return task, {o.output: o for o in task.outputs}

    same, same_outputs = check(three_classes(500, seed=1))
    assert not same.drift and not any(o.drift for o in same_outputs.values())
    # more aura days: the aura probability moves most
    shifted, outputs = check(three_classes(500, seed=2, aura_shift=0.7))
    assert shifted.drift and outputs["aura"].drift
    assert outputs["aura"].mean > outputs["aura"].reference_mean
    assert max(outputs.values(), key=lambda o: o.psi).output == "aura"
    assert shifted.to_dict()["outputs"]["aura"]["drift"] is True


def labelled(rows: int, labels: int, accuracy: float) -> tuple[list, list]:
    """Outcomes (None where no label yet) and predictions right on `accuracy` of the labels."""
    truth = [i % 2 for i in range(rows)]
    right = round(accuracy * labels)
    predicted = [t if i < right or i >= labels else 1 - t for i, t in enumerate(truth)]
    outcomes = [t if i < labels else None for i, t in enumerate(truth)]
    return outcomes, predicted


@pytest.mark.parametrize(
    ("labels", "accuracy", "evaluated", "flagged"),
    [
        (199, 0.65, False, False),  # a 10-point drop, but too few labels to judge
        (200, 0.65, True, True),  # min_labels reached: flagged
        (500, 0.65, True, True),
        (500, 0.72, True, False),  # 3 points below: within the 5
    ],
)
def test_an_accuracy_drop_is_flagged_once_min_labels_arrive(
    prepared, labels, accuracy, evaluated, flagged
):
    outcomes, predicted = labelled(500, labels, accuracy)

    report = check_drift(
        prepared, window(500, seed=5), outcomes=outcomes, predicted=predicted, test_value=0.75
    )

    performance = report.performance
    assert performance.labels == labels
    assert performance.value == pytest.approx(accuracy, abs=1 / labels)
    assert (performance.evaluated, performance.drift, report.drifted) == (
        evaluated,
        flagged,
        flagged,
    )
    assert report.drifted_features == []


@pytest.mark.parametrize(
    ("test_value", "accuracy", "flagged"),
    [
        (0.55, 0.51, False),  # 4 points (7 % relative): absolute points decide
        (0.95, 0.89, True),  # 6 points (6 % relative)
    ],
)
def test_the_accuracy_drop_is_in_absolute_points(test_value, accuracy, flagged):
    outcomes, predicted = labelled(1000, 1000, accuracy)
    performance = performance_drift(outcomes, predicted, test_value=test_value)
    assert performance.drop == pytest.approx(test_value - accuracy)
    assert performance.drift is flagged


def test_performance_reads_labels_in_any_spelling_and_names_bad_input():
    performance = performance_drift(["1", "0", 1.0, None], [1, 0, 0, 1], test_value=None)
    assert (performance.labels, performance.value) == (3, pytest.approx(2 / 3))
    assert not performance.evaluated and performance.drop is None
    # balanced: (recall of 0 + recall of 1) / 2 = (3/3 + 0/1) / 2
    balanced = performance_drift(
        [0, 0, 0, 1], [0, 0, 0, 0], test_value=0.8, metric="balanced_accuracy"
    )
    assert balanced.value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="metric 'auc': expected one of accuracy"):
        performance_drift([1], [1], test_value=0.8, metric="auc")
    with pytest.raises(ValueError, match="outcomes: 2 rows but predicted: 1"):
        performance_drift([1, 0], [1], test_value=0.8)


# --- the minimum window, the report -------------------------------------------------------


@pytest.mark.parametrize("rows", [0, 50, 199])
def test_nothing_is_flagged_below_the_minimum_window(prepared, training, rows):
    live = window(200, seed=6).iloc[:rows].copy()
    live["sleep_hours"] = live["sleep_hours"] + 3 * training.clean["sleep_hours"].std()
    outcomes, predicted = labelled(rows, rows, 0.0)

    report = check_drift(prepared, live, outcomes=outcomes, predicted=predicted, test_value=0.75)

    assert not report.drifted and report.drifted_features == []
    assert report.features == () and report.performance is None
    assert report.note == f"{WINDOW_TOO_SMALL}: {rows} rows, at least 200 needed"
    assert report.to_dict()["note"].startswith("window too small")


def test_the_report_is_json_for_the_drift_endpoint(prepared, reference, training):
    live = window(300, seed=7)
    live["sleep_hours"] = live["sleep_hours"] - training.clean["sleep_hours"].std()
    scores = generate_cohort(rows=300, prevalence=0.35, seed=7).true_probability

    predictions = {"classification": {"0": 1 - scores, "1": scores}}
    report = check_drift(prepared, live, predictions=predictions)
    body = report.to_dict()

    assert json.loads(json.dumps(body, allow_nan=False)) == body
    assert set(body) >= {"checked_at", "window", "features", "prediction", "performance"}
    assert body["window"] == 300 and body["performance"] is None
    sleep = body["features"]["sleep_hours"]
    assert sleep["drift"] is True and sleep["psi"] > 0.2 and sleep["ks_p"] < 1e-9
    assert body["features"]["gender"]["ks_p"] is None
    assert body["drifted_features"] == report.drifted_features == ["sleep_hours"]
    from_dict = check_drift(reference, live, predictions=predictions, checked_at=report.checked_at)
    assert from_dict == report  # a dict or a prepared reference: the same check
    with pytest.raises(ValueError, match="no column 'sleep_hours'"):
        check_drift(prepared, live.drop(columns="sleep_hours"))
