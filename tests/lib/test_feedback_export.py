"""Labelled predictions from the prediction log as training rows (migraine_ml.retraining)."""

import pandas as pd

from migraine_ml.monitoring.prediction_log import Feedback, LoggedPrediction, open_log
from migraine_ml.retraining.feedback import FEEDBACK_ID, export_feedback, read_feedback


def _log(tmp_path, schema, cohort, *, labelled_at, intervened=()):
    log = open_log(str(tmp_path / "log.db"))
    log.migrate()
    rows = cohort.head(len(labelled_at))
    records = rows[schema.features].astype(object).where(rows[schema.features].notna(), None)
    log.insert(
        [
            LoggedPrediction(
                f"{i:032x}", 100.0 + i, "m", "v", "r", "v", rec, None, None, None, None
            )
            for i, rec in enumerate(records.to_dict(orient="records"))
        ]
    )
    for i, (received, (_, row)) in enumerate(zip(labelled_at, rows.iterrows(), strict=True)):
        if received is not None:
            outcome = str(int(row["migraine_occurrence"]))
            log.add_feedback(
                Feedback(
                    f"{i:032x}", outcome, float(row["migraine_severity"]), None, i in intervened
                ),
                received_at=received,
            )
    return log, rows


def test_only_settled_labels_are_exported_in_the_datas_columns(tmp_path, schema, cohort):
    log, rows = _log(tmp_path, schema, cohort, labelled_at=[500.0, None, 900.0, 2000.0])
    labelled = log.labelled(received_before=1000.0)
    path = tmp_path / "feedback.csv"
    export = export_feedback(labelled, schema, path, labelled_before=1000.0)
    assert (export.rows, export.new_rows) == (2, 2)
    written = pd.read_csv(path, dtype={FEEDBACK_ID: str})
    assert list(written.columns) == [*schema.required, FEEDBACK_ID]
    assert list(written[FEEDBACK_ID]) == [f"{0:032x}", f"{2:032x}"]
    assert list(written["migraine_occurrence"]) == list(rows["migraine_occurrence"].iloc[[0, 2]])
    assert written["age"].tolist() == rows["age"].iloc[[0, 2]].tolist()


def test_the_file_only_grows_and_keeps_its_order(tmp_path, schema, cohort):
    log, _ = _log(tmp_path, schema, cohort, labelled_at=[500.0, 1500.0, 600.0])
    path = tmp_path / "feedback.csv"
    export_feedback(log.labelled(1000.0), schema, path, labelled_before=1000.0)
    first = pd.read_csv(path, dtype={FEEDBACK_ID: str})
    again = export_feedback(log.labelled(2000.0), schema, path, labelled_before=2000.0)
    assert (again.rows, again.new_rows) == (3, 1)
    grown = pd.read_csv(path, dtype={FEEDBACK_ID: str})
    pd.testing.assert_frame_equal(grown.head(2), first)
    assert grown[FEEDBACK_ID].iloc[-1] == f"{1:032x}"


def test_an_empty_or_absent_file_is_no_rows(tmp_path, schema):
    assert read_feedback(tmp_path / "none.csv", schema).empty
    (tmp_path / "other.csv").write_text("a,b\n")
    assert list(read_feedback(tmp_path / "other.csv", schema).columns) == [
        *schema.required,
        FEEDBACK_ID,
    ]


def test_labels_after_an_intervention_are_counted_not_exported(tmp_path, schema, cohort):
    log, _ = _log(tmp_path, schema, cohort, labelled_at=[500.0, 600.0, 700.0], intervened={1})
    labelled = log.labelled(1000.0)
    assert labelled["intervened"].tolist() == [0, 1, 0]
    path = tmp_path / "feedback.csv"
    export = export_feedback(labelled, schema, path, labelled_before=1000.0)
    assert (export.rows, export.new_rows, export.intervened) == (2, 2, 1)
    assert list(read_feedback(path, schema)[FEEDBACK_ID]) == [f"{0:032x}", f"{2:032x}"]
