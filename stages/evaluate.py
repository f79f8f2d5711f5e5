"""evaluate: the saved models on the held-out test split, against baseline and ceiling."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.calibration import calibration_curve
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from migraine_ml import persist
from migraine_ml.evaluation import (
    LOWER_IS_BETTER,
    diagnose,
    evaluate_task,
    grouping_note,
    multiclass_note,
    quality_gate,
)
from migraine_ml.preprocess import split_facts
from migraine_ml.report import (
    bar_figure,
    confusion_figure,
    curve_figure,
    png_data_uri,
    render_report,
    scatter_figure,
)
from migraine_ml.schema import load_schema
from migraine_ml.training import encode_labels, regression_rows
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("evaluate")

# CV scoring name -> the metric of the same meaning in the report
PRIMARY = {
    "roc_auc": "roc_auc",
    "f1_macro": "f1",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "r2": "r2",
}
# oracle.json key -> report metric, per task
CEILING_KEYS = {
    "classification": {
        "roc_auc": "roc_auc",
        "accuracy": "accuracy",
        "balanced_accuracy": "balanced_accuracy",
        "log_loss": "log_loss",
        "brier": "brier",
    },
    "regression": {"severity_r2": "r2", "severity_rmse": "rmse"},
}


def _matching_oracle(oracle_path: Path, data_path: str) -> tuple[dict | None, str]:
    """The oracle, only if it describes this very data file, and a note saying which."""
    if not oracle_path.exists():
        return None, "No oracle: there is no known ceiling for this data."
    oracle = json.loads(oracle_path.read_text())
    if oracle.get("data_md5") != persist.file_md5(data_path):
        return None, (
            "No known ceiling: this is not the generated cohort, so the best "
            "achievable score is unknown (the oracle is not compared)."
        )
    return oracle, (
        "Ceiling: the true generating model's scores on the whole generated "
        f"cohort ({oracle['rows']} rows; the test split is a sample of it, so "
        "expect a little sampling noise)."
    )


def _ceiling(oracle: dict | None, task: str) -> dict | None:
    if oracle is None:
        return None
    return {metric: oracle[key] for key, metric in CEILING_KEYS[task].items() if key in oracle}


def _classification_figures(live: Live, y, outputs, classes, names) -> list[tuple[str, str]]:
    champion = outputs["champion"]
    labels = [str(c) for c in classes]
    figures = []
    predicted = champion.argmax(axis=1)
    live.log_sklearn_plot(
        "confusion_matrix",
        [labels[i] for i in y],
        [labels[i] for i in predicted],
        name="classification/confusion.json",
    )
    figures.append(
        (
            "Confusion matrix, champion (test split)",
            png_data_uri(
                confusion_figure(
                    confusion_matrix(y, predicted, labels=range(len(labels))),
                    labels,
                    title=f"Confusion matrix: {names['champion']}",
                )
            ),
        )
    )
    if len(classes) != 2:
        return figures
    live.log_sklearn_plot("roc", y, champion[:, 1], name="classification/roc.json")
    live.log_sklearn_plot(
        "precision_recall", y, champion[:, 1], name="classification/precision_recall.json"
    )
    live.log_sklearn_plot("calibration", y, champion[:, 1], name="classification/calibration.json")
    roc, pr, calibration = {}, {}, {}
    for rank, proba in outputs.items():
        label = f"{rank}: {names.get(rank, rank)}"
        fpr, tpr, _ = roc_curve(y, proba[:, 1])
        roc[label] = (fpr, tpr)
        precision, recall, _ = precision_recall_curve(y, proba[:, 1])
        pr[label] = (recall, precision)
        if rank != "dummy":
            true, pred = calibration_curve(y, proba[:, 1], n_bins=10, strategy="quantile")
            calibration[label] = (pred, true)
    figures += [
        (
            "ROC curve (test split)",
            png_data_uri(
                curve_figure(
                    roc,
                    title="ROC",
                    xlabel="false positive rate",
                    ylabel="true positive rate",
                    diagonal=True,
                )
            ),
        ),
        (
            "Precision-recall curve (test split)",
            png_data_uri(
                curve_figure(pr, title="Precision-recall", xlabel="recall", ylabel="precision")
            ),
        ),
        (
            "Calibration curve (test split, quantile bins)",
            png_data_uri(
                curve_figure(
                    calibration,
                    title="Calibration",
                    xlabel="mean predicted probability",
                    ylabel="observed fraction of migraines",
                    diagonal=True,
                )
            ),
        ),
    ]
    return figures


def _importance(live, task, model, X, y, *, scoring, repeats, seed, name):
    """Permutation importance on the test split, in raw feature names."""
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    order = np.argsort(-result.importances_mean)
    means = {X.columns[i]: float(result.importances_mean[i]) for i in order}
    errors = {X.columns[i]: float(result.importances_std[i]) for i in order}
    live.log_plot(
        f"{task}/importance",
        [{"feature": f, "importance": round(v, 6)} for f, v in means.items()],
        x="importance",
        y="feature",
        template="bar_horizontal",
        title=f"{task}: permutation importance ({scoring} drop)",
    )
    figure = bar_figure(
        means,
        errors=errors,
        xlabel=f"drop in {scoring} when permuted",
        title=f"Permutation importance: {name}",
    )
    return {k: round(v, 6) for k, v in means.items()}, png_data_uri(figure)


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--data", required=True, help="the CSV the models were built from")
    cli.add_argument("--split-dir", required=True, help="raw train/test rows (parquet)")
    cli.add_argument("--models-dir", required=True, help="saved models and manifest")
    cli.add_argument("--oracle", required=True, help="oracle scores of the generated cohort")
    cli.add_argument("--metrics", required=True, help="metrics JSON (for dvc metrics)")
    cli.add_argument("--details", required=True, help="full evaluation JSON")
    cli.add_argument("--gate", required=True, help="quality gate JSON")
    cli.add_argument("--html", required=True, help="the HTML report")
    cli.add_argument("--live-dir", required=True, help="dvclive plot directory")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    config, seed = params["evaluate"], params["seed"]
    schema = load_schema(args.schema)
    models_dir = Path(args.models_dir)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    train = pd.read_parquet(Path(args.split_dir) / "train.parquet")
    test = pd.read_parquet(Path(args.split_dir) / "test.parquet")
    live = Live(args.live_dir, dvcyaml=None, save_dvc_exp=False, report=None)

    metrics, details, figures, gate_checks, notes = {}, {}, {}, [], []
    # read and hashed once: the data file can be large
    oracle, oracle_note = _matching_oracle(Path(args.oracle), args.data)
    for task in ("classification", "regression"):
        entries = {m["rank"]: m for m in manifest["models"] if m["task"] == task}
        if not entries:
            continue
        models = {rank: persist.load(models_dir / e["file"]) for rank, e in entries.items()}
        names = {rank: e["name"] for rank, e in entries.items()} | {"dummy": "dummy baseline"}
        if task == "classification":
            classes = entries["champion"]["classes"]
            tr, te = train, test
            target = schema.classification_target
            y_train = encode_labels(tr[target], classes).to_numpy()
            y_test = encode_labels(te[target], classes).to_numpy()
            dummy = DummyClassifier(strategy="prior").fit(tr[schema.features], y_train)
            if len(classes) > 2:
                notes.append(multiclass_note(classes, y_test))
        else:
            tr = train[regression_rows(train, schema)]
            te = test[regression_rows(test, schema)]
            y_train = tr[schema.regression_target].to_numpy(float)
            y_test = te[schema.regression_target].to_numpy(float)
            dummy = DummyRegressor(strategy="mean").fit(tr[schema.features], y_train)
        primary = PRIMARY[entries["champion"]["cv"]["scoring"]]
        logger.info(
            "%s: %d test rows, %d bootstrap resamples",
            task,
            len(y_test),
            config["bootstrap_resamples"],
        )
        result = evaluate_task(
            task=task,
            primary=primary,
            models=models,
            dummy=dummy,
            X_train=tr[schema.features],
            y_train=y_train,
            X_test=te[schema.features],
            y_test=y_test,
            resamples=config["bootstrap_resamples"],
            seed=seed,
            confidence=config["confidence"],
        )
        ceiling, ceiling_note = _ceiling(oracle, task), oracle_note
        higher = primary not in LOWER_IS_BETTER
        diagnosis = {
            rank: diagnose(
                train_score=result["train"][rank][primary],
                test_score=result["test"][rank][primary],
                dummy_score=result["test"]["dummy"][primary],
                higher_is_better=higher,
                overfit_gap=config["overfit_gap"],
                underfit_floor=config["underfit_floor"],
                margin=config["gate_margin"],
                ceiling=(ceiling or {}).get(primary),
            )
            for rank in models
        }
        champion = diagnosis["champion"]
        gate_checks.append(
            {
                "task": task,
                "model": names["champion"],
                "metric": primary,
                "test": champion["test"],
                "dummy": result["test"]["dummy"][primary],
                "lift_over_dummy": round(champion["lift_over_dummy"], 6),
                "margin": config["gate_margin"],
                "verdict": champion["verdict"],
            }
        )
        task_metrics = {rank: scores for rank, scores in result["test"].items()}
        if ceiling:
            task_metrics["ceiling"] = ceiling
            gap = ceiling[primary] - result["test"]["champion"][primary]
            task_metrics["champion_gap_to_ceiling"] = {primary: round(gap, 6)}
            ceiling_note += (
                f" The champion's test {primary} "
                f"{result['test']['champion'][primary]:.4f} is {gap:.4f} "
                f"{'below' if gap >= 0 else 'above'} the ceiling "
                f"{ceiling[primary]:.4f}."
            )
        if result["champion_vs_runner_up"]:
            task_metrics["champion_vs_runner_up"] = result["champion_vs_runner_up"]
        metrics[task] = task_metrics

        task_figures = []
        if task == "classification":
            task_figures += _classification_figures(live, y_test, result["outputs"], classes, names)
        else:
            predicted = result["outputs"]["champion"]
            residuals = y_test - predicted
            live.log_plot(
                "regression/residuals",
                [
                    {"predicted": round(float(p), 4), "residual": round(float(r), 4)}
                    for p, r in zip(predicted, residuals, strict=True)
                ],
                x="predicted",
                y="residual",
                template="scatter",
                title="regression: residuals vs predicted",
            )
            task_figures.append(
                (
                    "Residuals vs predicted, champion (test split)",
                    png_data_uri(
                        scatter_figure(
                            predicted,
                            residuals,
                            title=f"Residuals: {names['champion']}",
                            xlabel="predicted",
                            ylabel="actual - predicted",
                        )
                    ),
                )
            )
        importance, figure = _importance(
            live,
            task,
            models["champion"],
            te[schema.features],
            y_test,
            scoring=entries["champion"]["cv"]["scoring"],
            repeats=config["permutation_repeats"],
            seed=seed,
            name=names["champion"],
        )
        task_figures.append(("Permutation importance, champion (test split)", figure))
        figures[task] = task_figures
        details[task] = {
            "primary": primary,
            "names": names,
            "test": result["test"],
            "train": result["train"],
            "diagnosis": diagnosis,
            "ceiling": ceiling,
            "ceiling_note": ceiling_note,
            "champion_vs_runner_up": result["champion_vs_runner_up"],
            "permutation_importance": importance,
            "test_rows": len(y_test),
        }
        logger.info(
            "%s champion %s: test %s=%.4f (dummy %.4f) -> %s",
            task,
            names["champion"],
            primary,
            champion["test"],
            result["test"]["dummy"][primary],
            champion["verdict"],
        )

    gate = quality_gate(gate_checks)
    grouping = None
    metrics["gate_passed"] = gate["passed"]
    if schema.group:
        grouping = {
            "split": split_facts(train, test, group=schema.group),
            "cv": manifest.get("cv", {}),
        }
        notes.append(grouping_note(schema.group, grouping))
    notes += [
        f"{e['task']} {e['name']}: {n}" for e in manifest["leaderboard"] for n in e.get("notes", [])
    ]
    live.end()
    write_json(metrics, args.metrics)
    write_json(details | {"gate": gate, "notes": notes, "grouping": grouping}, args.details)
    write_json(gate, args.gate)
    summary = [
        f"Data: {args.data} ({len(train)} train rows, {len(test)} test rows; schema "
        f"'{schema.name}')",
        f"{config['confidence']:.0%} bootstrap intervals from "
        f"{config['bootstrap_resamples']} resamples of the test rows (seed {seed}).",
    ]
    Path(args.html).write_text(
        render_report(
            title="Migraine models: evaluation on the held-out test split",
            summary=summary,
            gate=gate,
            tasks=details,
            leaderboard=manifest["leaderboard"],
            figures=figures,
            notes=notes,
        ),
        encoding="utf-8",
    )
    logger.info(
        "quality gate %s%s",
        "PASSED" if gate["passed"] else "FAILED",
        "".join(f"\n  {f}" for f in gate["failures"]),
    )


if __name__ == "__main__":
    main()
