"""The dvclive plot files dvc.yaml declares: the champion's, on the test split."""

from __future__ import annotations

from pathlib import Path

from dvclive import Live

from migraine_ml.evaluation.evaluate import Evaluation, TaskEvaluation


def log_plots(live_dir: str | Path, evaluation: Evaluation) -> None:
    live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
    for task in evaluation.tasks.values():
        _log_task(live, task)
    live.end()


def _log_task(live: Live, task: TaskEvaluation) -> None:
    y, champion = task.y_test, task.scores.outputs["champion"]
    if task.classes is not None:
        labels = [str(c) for c in task.classes]
        live.log_sklearn_plot(
            "confusion_matrix",
            [labels[i] for i in y],
            [labels[i] for i in champion.argmax(axis=1)],
            name="classification/confusion.json",
        )
        if len(labels) == 2:
            for kind in ("roc", "precision_recall", "calibration"):
                live.log_sklearn_plot(kind, y, champion[:, 1], name=f"classification/{kind}.json")
    else:
        live.log_plot(
            "regression/residuals",
            [
                {"predicted": round(float(p), 4), "residual": round(float(r), 4)}
                for p, r in zip(champion, y - champion, strict=True)
            ],
            x="predicted",
            y="residual",
            template="scatter",
            title="regression: residuals vs predicted",
        )
    live.log_plot(
        f"{task.task}/importance",
        [{"feature": f, "importance": round(v, 6)} for f, v in task.importance.items()],
        x="importance",
        y="feature",
        template="bar_horizontal",
        title=f"{task.task}: permutation importance",
    )
