"""evaluate: the saved models on the held-out test split, against baseline and ceiling."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from dvclive import Live
from sklearn.dummy import DummyClassifier, DummyRegressor

from migraine_ml import persist
from migraine_ml.data.preprocess import split_facts
from migraine_ml.data.schema import load_schema
from migraine_ml.evaluation.evaluate import (
    PRIMARY,
    ceiling_of,
    evaluate_task,
    grouping_note,
    judge_task,
    matching_oracle,
    multiclass_note,
    permutation_scores,
    quality_gate,
)
from migraine_ml.evaluation.report import (
    classification_figures,
    importance_figure,
    render_report,
    residual_figure,
)
from migraine_ml.modeling.tasks import task_rows
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("evaluate")


def _log_plots(live: Live, task: str, y, outputs, classes, importance: dict) -> None:
    """The dvclive plot files dvc.yaml declares (the champion's, test split)."""
    champion = outputs["champion"]
    if task == "classification":
        labels = [str(c) for c in classes]
        live.log_sklearn_plot(
            "confusion_matrix",
            [labels[i] for i in y],
            [labels[i] for i in champion.argmax(axis=1)],
            name="classification/confusion.json",
        )
        if len(classes) == 2:
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
        f"{task}/importance",
        [{"feature": f, "importance": round(v, 6)} for f, v in importance.items()],
        x="importance",
        y="feature",
        template="bar_horizontal",
        title=f"{task}: permutation importance",
    )


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
    oracle, oracle_note = matching_oracle(Path(args.oracle), args.data)
    for task in ("classification", "regression"):
        entries = {m["rank"]: m for m in manifest["models"] if m["task"] == task}
        if not entries:
            continue
        models = {rank: persist.load(models_dir / e["file"]) for rank, e in entries.items()}
        names = {rank: e["name"] for rank, e in entries.items()} | {"dummy": "dummy baseline"}
        classes = entries["champion"].get("classes")
        tr, y_train = task_rows(task, schema, train, classes)
        te, y_test = task_rows(task, schema, test, classes)
        y_train, y_test = y_train.to_numpy(), y_test.to_numpy()
        if task == "classification":
            dummy = DummyClassifier(strategy="prior").fit(tr[schema.features], y_train)
            if len(classes) > 2:
                notes.append(multiclass_note(classes, y_test))
        else:
            dummy = DummyRegressor(strategy="mean").fit(tr[schema.features], y_train)
        scoring = entries["champion"]["cv"]["scoring"]
        primary = PRIMARY[scoring]
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
        ceiling = ceiling_of(oracle, task)
        judged = judge_task(
            task,
            result,
            primary=primary,
            champion_name=names["champion"],
            ceiling=ceiling,
            ceiling_note=oracle_note,
            overfit_gap=config["overfit_gap"],
            underfit_floor=config["underfit_floor"],
            margin=config["gate_margin"],
        )
        gate_checks.append(judged["gate_check"])
        metrics[task] = judged["metrics"]
        importance, spread = permutation_scores(
            models["champion"],
            te[schema.features],
            y_test,
            scoring=scoring,
            repeats=config["permutation_repeats"],
            seed=seed,
        )
        outputs = result["outputs"]
        _log_plots(live, task, y_test, outputs, classes, importance)
        if task == "classification":
            figures[task] = classification_figures(y_test, outputs, classes, names)
        else:
            figures[task] = [residual_figure(y_test, outputs["champion"], names["champion"])]
        figures[task].append(
            importance_figure(importance, spread, scoring=scoring, name=names["champion"])
        )
        details[task] = {
            "primary": primary,
            "names": names,
            "test": result["test"],
            "train": result["train"],
            "diagnosis": judged["diagnosis"],
            "ceiling": ceiling,
            "ceiling_note": judged["ceiling_note"],
            "champion_vs_runner_up": result["champion_vs_runner_up"],
            "permutation_importance": {k: round(v, 6) for k, v in importance.items()},
            "test_rows": len(y_test),
        }
        check = judged["gate_check"]
        logger.info(
            "%s champion %s: test %s=%.4f (dummy %.4f) -> %s",
            task,
            check["model"],
            primary,
            check["test"],
            check["dummy"],
            check["verdict"],
        )

    gate = quality_gate(gate_checks)
    metrics["gate_passed"] = gate["passed"]
    grouping = None
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
            title=f"Models for '{schema.name}': evaluation on the held-out test split",
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
