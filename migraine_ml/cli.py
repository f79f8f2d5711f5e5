"""migraine: the command-line tools around the pipeline (one subcommand each).

Exit codes scripts can rely on: 0 ok, 1 the verdict failed (the gate failed,
the smoke test found problems, the schema command refused the data), 2 a usage
error. Each subcommand is thin like a stage: it parses, calls migraine_ml and
prints.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import click

logger = logging.getLogger("migraine")

# The heavy libraries (pandas, matplotlib) are imported inside the subcommands
# that need them, so `migraine --help`, `gate` and `smoke` start in a blink.


# the prediction log, as the service names it
_log_option = click.option(
    "--log",
    "log_target",
    default=lambda: os.environ.get("MIGRAINE_PREDICTION_LOG", "data/predictions.db"),
    show_default="$MIGRAINE_PREDICTION_LOG or data/predictions.db",
    help="The prediction log: a SQLite file or a postgresql:// URL.",
)


class Failed(click.ClickException):
    """Exit 1 (or `exit_code`) with the message alone on stderr, no 'Error:' prefix."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


@click.group(name="migraine", context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The migraine-ml command-line tools.

    Exit codes: 0 ok, 1 the verdict failed (gate, smoke test, schema refused
    the data), 2 a usage error.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


@main.command()
@click.option("--data", required=True, help="The CSV to describe.")
@click.option("--out", required=True, help="The schema YAML to write.")
@click.option("--target", help="The column to classify.")
@click.option("--regression-target", help="A numeric column to regress on.")
@click.option("--group", help="A patient/subject id: its rows never straddle a split.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out.")
def schema(
    data: str,
    out: str,
    target: str | None,
    regression_target: str | None,
    group: str | None,
    force: bool,
) -> None:
    """Draft a schema YAML for a CSV, to review before a run.

    Review its ranges, values and roles, then run the pipeline on the CSV with
    `dvc exp run -S data.path=<csv> -S data.schema=<yaml>`.
    """
    import pandas as pd

    from migraine_ml.data.inference import InferenceError, infer_schema, to_yaml

    out_path = Path(out)
    if out_path.exists() and not force:
        # the user may have edited it: never overwrite a reviewed schema silently
        raise Failed(
            f"schema: {out} exists; pass --force (make schema ... FORCE=1) to overwrite it"
        )
    try:
        frame = pd.read_csv(data)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise Failed(f"schema: cannot read {data}: {err}") from err
    try:
        inferred = infer_schema(
            frame,
            target=target,
            regression_target=regression_target,
            group=group,
            name=out_path.stem,
        )
    except InferenceError as err:
        raise Failed(f"schema: {err}") from err
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(to_yaml(inferred, source=data, rows=len(frame)), encoding="utf-8")
    drafted = inferred.schema
    roles = {
        role: [c.name for c in drafted.columns.values() if c.role == role]
        for role in ("classification_target", "regression_target", "group", "id")
    }
    logger.info(
        "wrote %s: %d features (%d numeric, %d category)%s",
        out_path,
        len(drafted.features),
        sum(drafted.columns[c].is_numeric for c in drafted.features),
        sum(drafted.columns[c].dtype == "category" for c in drafted.features),
        "".join(f"; {role}: {', '.join(names)}" for role, names in roles.items() if names),
    )
    for name in inferred.skipped:
        logger.warning("left out '%s': empty in every row", name)
    logger.info(
        "review it (ranges, values, roles), then: dvc exp run -S data.path=%s -S data.schema=%s",
        data,
        out_path,
    )


@main.command()
@click.option(
    "--out-dir", default="data/examples", show_default=True, help="Where the CSV files go."
)
@click.option("--seed", type=int, default=42, show_default=True)
def examples(out_dir: str, seed: int) -> None:
    """Write the example datasets as CSV files.

    headache_diary.csv (a patient diary), headache_yes_no.csv (a yes/no cohort) and
    headache_clinic.csv (one row per clinic patient, six diagnoses).
    """
    from migraine_ml.data.examples import clinical_table, headache_diary, yes_no_cohort

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("headache_diary.csv", headache_diary(seed=seed)),
        ("headache_yes_no.csv", yes_no_cohort(seed=seed)),
        ("headache_clinic.csv", clinical_table(seed=seed)),
    ):
        frame.to_csv(out / name, index=False)
        click.echo(f"wrote {out / name}: {len(frame)} rows, {frame.shape[1]} columns")


@main.command()
@click.option(
    "--gate",
    "gate_path",
    default="reports/gate.json",
    show_default=True,
    help="The gate JSON that evaluate writes.",
)
def gate(gate_path: str) -> None:
    """Exit 1 unless the evaluation passed the quality gate.

    CI runs it after `dvc repro`; the failures are listed on stderr.
    """
    try:
        with open(gate_path, encoding="utf-8") as fh:
            verdict = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise Failed(
            f"quality gate: cannot read {gate_path} ({err}); run `make repro` first"
        ) from err
    if not verdict["passed"]:
        raise Failed("\n  ".join(["quality gate FAILED:", *verdict["failures"]]))
    click.echo(f"quality gate passed ({len(verdict['checks'])} champions checked)")


@main.command()
@click.option("--base", required=True, help="The git ref to compare with (origin/main).")
@click.option("--out", default="report.md", show_default=True, help="The Markdown file to write.")
def report(base: str, out: str) -> None:
    """Write report.md: this tree against a base git ref.

    Params and metrics diffs as tables, plots side by side, the quality gate.
    Run it from the repository root; works without a DVC remote.
    """
    from migraine_ml.evaluation.pr_report import ReportError, write_pr_report

    try:
        written = write_pr_report(base=base, out=Path(out))
    except ReportError as err:
        raise Failed(f"report: {err}") from err
    click.echo(f"wrote {written.path} ({len(written.plots)} plots in {written.plots_dir})")


@main.command()
@click.option(
    "-S",
    "--set",
    "grid",
    multiple=True,
    required=True,
    help="A parameter and its values, as for `dvc exp run -S`: features.n_features=10,30.",
)
def sweep(grid: tuple[str, ...]) -> None:
    """Run a parameter grid as DVC experiments.

    Then show a table of them: the experiment, its swept parameters and the
    champions' primary metrics.
    """
    from migraine_ml.experiments import SweepError, run_sweep, swept_parameters

    try:
        swept_parameters(list(grid))
    except SweepError as err:
        raise Failed(str(err), exit_code=2) from err
    try:
        click.echo(run_sweep(list(grid)), nl=False)
    except SweepError as err:
        raise Failed(str(err)) from err


@main.command(name="bench-scale")
@click.option(
    "--rows",
    default="8000,100000",
    show_default=True,
    help="Cohort sizes to run the whole pipeline at, comma-separated (e.g. 8000,100000,1000000).",
)
def bench_scale(rows: str) -> None:
    """Time and peak memory of every stage at each cohort size.

    Runs bench/scale.py of this checkout (run it from the repository's root): a
    scratch clone per size, every stage under GNU time, results in
    reports/bench/scale.json and scale.png (docs/scale.md).
    """
    sizes = rows.split(",")
    if not all(size.strip().isdigit() and int(size) > 0 for size in sizes):
        raise Failed(
            f"bench-scale: --rows {rows!r}: expected row counts like 8000,100000", exit_code=2
        )
    script = Path("bench") / "scale.py"
    if not script.is_file():
        raise Failed(
            f"bench-scale: {script} not found in {Path.cwd()}: run it from the repository's root",
            exit_code=2,
        )
    # the benchmark is a script of the checkout (bench/), not of the installed package
    code = subprocess.run([sys.executable, str(script), "--rows", rows], check=False).returncode
    if code:
        raise Failed(f"bench-scale: {script} exited with {code}", exit_code=1)


@main.command(name="drift-report")
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="The period's start: a duration back from now (24h, 7d) or an ISO-8601 date/time.",
)
@_log_option
@click.option("--models", "models_dir", default="models", show_default=True)
@click.option("--metrics", "metrics_path", default="reports/metrics.json", show_default=True)
@click.option("--out-dir", default="reports", show_default=True)
@click.option("--min-window", default=200, show_default=True, help="Judge nothing below this.")
@click.option("--min-labels", default=200, show_default=True, help="Judge accuracy from this.")
def drift_report(
    since: str,
    log_target: str,
    models_dir: str,
    metrics_path: str,
    out_dir: str,
    min_window: int,
    min_labels: int,
) -> None:
    """Judge drift in the prediction log.

    Every prediction logged since --since is judged at once; the verdict goes to
    drift.json and drift.html in --out-dir.

    Exit 0 whether or not there is drift (the JSON says); 1 when the log or the
    models cannot be read.
    """
    from migraine_ml.monitoring.drift_report import parse_since, write_drift_report
    from migraine_ml.monitoring.monitor import DriftSettings, champion_figure
    from migraine_ml.monitoring.prediction_log import LogUnavailable, open_log

    try:
        start = parse_since(since)
        settings = DriftSettings(min_window=min_window, min_labels=min_labels, window=min_window)
    except ValueError as err:
        raise Failed(f"drift-report: {err}", exit_code=2) from err
    models = Path(models_dir)
    try:
        reference = json.loads((models / "reference.json").read_text())
        manifest = json.loads((models / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise Failed(
            f"drift-report: cannot read the models' reference ({err}); run `make repro`"
        ) from err
    try:
        test_value = champion_figure(json.loads(Path(metrics_path).read_text()), settings.metric)
    except (OSError, json.JSONDecodeError):
        test_value = None  # not evaluated yet: performance is shown, not judged
    try:
        database = open_log(log_target)
        drift, json_path, html_path = write_drift_report(
            database,
            reference,
            manifest,
            since=start,
            settings=settings,
            test_value=test_value,
            out_dir=Path(out_dir),
        )
    except LogUnavailable as err:
        raise Failed(f"drift-report: cannot read the prediction log: {err}") from err
    summary = drift.note or (
        f"DRIFT in {', '.join(drift.drifted_features) or 'model outputs or performance'}"
        if drift.drifted
        else "no drift"
    )
    click.echo(f"{drift.window} predictions since {start.isoformat(timespec='seconds')}: {summary}")
    click.echo(f"wrote {json_path} and {html_path}")


@main.command()
@_log_option
@click.option("--params", "params_path", default="params.yaml", show_default=True)
@click.option("--out", default="reports/promotion.json", show_default=True)
def retrain(log_target: str, params_path: str, out: str) -> None:
    """Retrain on feedback; promote only if better.

    Labelled feedback older than retrain.label_delay_hours joins the data; the
    pipeline runs as a DVC experiment; champion and challenger are compared on
    the same test rows (docs/retraining.md). --out records the decision either
    way. Exit 0 whether or not the challenger was promoted; 1 when the cycle
    could not run.
    """
    import yaml

    from migraine_ml.monitoring.prediction_log import LogUnavailable, open_log
    from migraine_ml.retraining.retrain import RetrainError, promotion_summary
    from migraine_ml.retraining.retrain import retrain as run_retrain

    params = yaml.safe_load(Path(params_path).read_text())
    try:
        record = run_retrain(
            Path("."), log=open_log(log_target), params=params, promotion_path=Path(out)
        )
    except (RetrainError, LogUnavailable) as err:
        raise Failed(f"retrain: {err}") from err
    click.echo(promotion_summary(record))
    click.echo(f"wrote {out}")


@main.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def rollback(params_path: str) -> None:
    """Undo the latest promotion.

    Reverts the promotion commit, checks its models out (`dvc checkout`) and
    points the MLflow `champion` alias back at `previous`. A running service
    picks the models up as it picks up a promotion.
    """
    import yaml

    from migraine_ml.retraining.retrain import RetrainError
    from migraine_ml.retraining.retrain import rollback as run_rollback

    params = yaml.safe_load(Path(params_path).read_text())
    try:
        commit = run_rollback(Path("."), schema_path=params["data"]["schema"])
    except RetrainError as err:
        raise Failed(f"rollback: {err}") from err
    click.echo(f"reverted {commit[:12]}: the previous models are checked out")


@main.command(name="retrain-webhook")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9095, show_default=True, type=click.IntRange(0, 65535))
@click.option("--path", "url_path", default="/alerts", show_default=True)
@click.option(
    "--command",
    default="migraine retrain",
    show_default=True,
    help="What a drift alert starts (split as a shell splits words, run without one).",
)
@click.option(
    "--cooldown", default="6h", show_default=True, help="Least time between two runs' starts."
)
@click.option(
    "--alert",
    "alertnames",
    multiple=True,
    help="An alertname that starts a run (repeatable); default: the drift alerts.",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A file holding the bearer token Alertmanager sends (its credentials_file).",
)
def retrain_webhook(
    host: str,
    port: int,
    url_path: str,
    command: str,
    cooldown: str,
    alertnames: tuple[str, ...],
    token_file: str | None,
) -> None:
    """Start a retrain on a drift alert.

    An Alertmanager webhook receiver: a firing drift alert (MigraineFeatureDrift,
    MigrainePredictionDrift, MigraineAccuracyDrop) starts --command, once per
    incident, one run at a time, runs at least --cooldown apart
    (docs/retraining.md#triggers). Serves until interrupted.
    """
    import shlex

    from migraine_ml.retraining.webhook import (
        DRIFT_ALERTS,
        RetrainTrigger,
        parse_duration,
        read_token,
        serve,
    )

    try:
        trigger = RetrainTrigger(
            shlex.split(command),
            cooldown=parse_duration(cooldown),
            alertnames=alertnames or DRIFT_ALERTS,
        )
        token = read_token(token_file) if token_file else None
    except ValueError as err:
        raise Failed(f"retrain-webhook: {err}", exit_code=2) from err
    try:
        serve(trigger, host=host, port=port, path=url_path, token=token)
    except OSError as err:
        raise Failed(f"retrain-webhook: cannot listen on {host}:{port}: {err}") from err
    except KeyboardInterrupt:
        click.echo("stopped")


@main.command()
@click.option("--url", required=True, help="The base URL of the service (http:// or https://).")
def smoke(url: str) -> None:
    """Check a deployed service end to end; exit 1 on problems.

    The API key, if the service needs one, comes from the API_KEY environment
    variable. CI rolls the deploy back when this fails.
    """
    from migraine_ml.monitoring.smoke import URLSchemeError, check

    try:
        problems = check(url, os.environ.get("API_KEY"))
    except URLSchemeError as err:
        raise Failed(f"smoke: --url {err}", exit_code=2) from err
    if problems:
        raise Failed("\n  ".join(["smoke test FAILED:", *problems]))
    click.echo(f"smoke test passed: {url}")


if __name__ == "__main__":
    main()
