"""reports/promotion.json as Markdown: the body of a promotion's pull request.

`promotion_markdown` reads the record `compare.write_promotion` (or `write_skip`)
wrote: champion against challenger per task with the paired bootstrap's interval,
each class's recall, every check of the rule, the models and the data. The
scheduled retrain (.github/workflows/retrain.yaml) runs

    python -m migraine_ml.retraining.summary reports/promotion.json > body.md
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any

# where each promotion commits a copy of its record (<experiment>.json)
PROMOTIONS = "reports/promotions"


def promotion_markdown(record: Mapping[str, Any], *, source: str = "reports/promotion.json") -> str:
    """The record as Markdown, for any status (promoted, kept, skipped)."""
    challenger = record.get("challenger") or {}
    experiment = challenger.get("experiment")
    title = f"Retrain: {record['status']}" + (f" ({experiment})" if experiment else "")
    lines = [f"## {title}", ""]
    if not record.get("checks"):  # the checks below say it otherwise, one by one
        lines += [f"**{record['status']}**: {record.get('reason', '')}", ""]
    tasks = record.get("tasks") or {}
    if tasks:
        lines += _task_table(tasks, record.get("primary"), record.get("rule") or {})
    recalls = [
        (name, recall) for name, task in tasks.items() for recall in task.get("class_recall", [])
    ]
    if recalls:
        lines += ["Recall by class, on the same rows:", ""]
        lines += [
            "| task | class | rows | champion | challenger | change |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {r['label']} | {r['rows']:,} | {_score(r['champion'])} "
            f"| {_score(r['challenger'])} | {_signed(r['change'])} |"
            for name, r in recalls
        ]
        lines.append("")
    if record.get("checks"):
        lines += [_rule_sentence(record.get("rule") or {}), ""]
        lines += [
            f"- {_verdict(c['passed'])} `{c['name']}` ({c['task']}): {c['detail']}"
            for c in record["checks"]
        ]
        lines.append("")
    lines += _models(record.get("champion") or {}, challenger)
    lines += _data(record.get("data") or {})
    lines.append(f"Rendered from `{source}`.")
    return "\n".join(lines) + "\n"


def _task_table(
    tasks: Mapping[str, Any], primary: str | None, rule: Mapping[str, Any]
) -> list[str]:
    confidence = rule.get("confidence")
    level = f"{confidence:.0%} interval" if confidence else "interval"
    lines = [
        "Champion and challenger scored on the same rows (the challenger's test split); "
        "a gain is positive when the challenger is better.",
        "",
        f"| task | metric | champion | challenger | gain | {level} | share not better |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, task in tasks.items():
        difference = task["difference"]
        shown = f"{name} (primary)" if name == primary else name
        lines.append(
            f"| {shown} | {task['metric']} | {_score(task['champion'])} "
            f"| {_score(task['challenger'])} | {_signed(difference['difference'])} "
            f"| [{_signed(difference['ci_low'])}, {_signed(difference['ci_high'])}] "
            f"| {_share(difference['share_not_better'])} |"
        )
    lines.append("")
    return lines


def _rule_sentence(rule: Mapping[str, Any]) -> str:
    if not rule:
        return "The rule's checks:"
    return (
        f"The rule: a gain above {rule['min_gain']:g} with the interval above zero, no class "
        f"losing more than {rule['max_class_drop']:g} recall, no other task significantly "
        f"worse ({rule.get('resamples', '?')} paired bootstrap resamples)."
    )


def _models(champion: Mapping[str, Any], challenger: Mapping[str, Any]) -> list[str]:
    champion_models = champion.get("models") or {}
    challenger_models = challenger.get("models") or {}
    files = sorted(set(champion_models) | set(challenger_models))
    if not files:
        return []
    lines = [
        f"| model file | champion (commit {_commit(champion)}) "
        f"| challenger (commit {_commit(challenger)}) |",
        "|---|---|---|",
    ]
    for file in files:
        lines.append(
            f"| `{file}` | {_model(champion_models.get(file))} "
            f"| {_model(challenger_models.get(file))} |"
        )
    return [*lines, ""]


def _data(data: Mapping[str, Any]) -> list[str]:
    feedback = data.get("feedback") or {}
    parts = []
    if feedback:
        parts.append(
            f"feedback `{feedback.get('path', '?')}`: {feedback.get('rows', 0):,} rows, "
            f"{feedback.get('new_rows', 0):,} new"
            + (
                f", {feedback['intervened']:,} after an intervention left out"
                if feedback.get("intervened")
                else ""
            )
        )
    if data.get("test_rows") is not None:
        parts.append(f"{data['test_rows']:,} test rows compared")
    return [f"Data: {'; '.join(parts)}.", ""] if parts else []


def _verdict(passed: bool) -> str:
    return "passed" if passed else "**failed**"


def _commit(identity: Mapping[str, Any]) -> str:
    commit = identity.get("commit")
    return f"`{commit[:12]}`" if commit else "?"


def _model(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "none"
    md5 = entry.get("md5")
    return f"{entry.get('name', '?')}" + (f" (md5 `{md5[:8]}`)" if md5 else "")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _score(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value:.4f}"


def _signed(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value:+.4f}"


def _share(value: Any) -> str:
    return "n/a" if _missing(value) else f"{value:.1%}"


def main(argv: list[str] | None = None) -> int:
    """`python -m migraine_ml.retraining.summary [promotion.json]`: the Markdown on stdout."""
    args = sys.argv[1:] if argv is None else argv
    source = args[0] if args else "reports/promotion.json"
    with open(source, encoding="utf-8") as fh:
        record = json.load(fh)
    sys.stdout.write(promotion_markdown(record, source=source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
