"""reports/promotion.json rendered as the body of a promotion's pull request."""

from __future__ import annotations

import numpy as np
import pytest

from migraine_ml.retraining.compare import (
    PromotionRule,
    compare_task,
    decide,
    write_promotion,
    write_skip,
)
from migraine_ml.retraining.summary import main, promotion_markdown
from tests.lib.test_compare import binary_outputs

RULE = PromotionRule(min_gain=0.01, max_class_drop=0.05, resamples=200)
CHAMPION = {
    "commit": "a" * 40,
    "models": {"classifier-champion.skops": {"name": "xgboost", "md5": "0123456789abcdef"}},
}
CHALLENGER = {
    "commit": "b" * 40,
    "models": {"classifier-champion.skops": {"name": "lightgbm", "md5": "fedcba9876543210"}},
    "experiment": "retrain-20261128-090000",
}
DATA = {
    "feedback": {
        "path": "data/feedback/feedback.csv",
        "rows": 1200,
        "new_rows": 600,
        "intervened": 40,
    },
    "test_rows": 1834,
}


def promotion(tmp_path, *, rule: PromotionRule = RULE) -> dict:
    """What `write_promotion` writes for a clearly better challenger (judged by `rule`)."""
    rng = np.random.default_rng(13)
    y = (rng.random(500) < 0.4).astype(int)
    comparison = compare_task(
        "migraine",
        y,
        binary_outputs(y, 2.0, rng),
        binary_outputs(y, 0.8, rng),
        classification=True,
        classes=["no", "yes"],
        rule=rule,
        seed=0,
    )
    decision = decide({"migraine": comparison}, primary="migraine", rule=rule)
    return write_promotion(
        tmp_path / "promotion.json",
        decision=decision,
        comparisons={"migraine": comparison},
        champion=CHAMPION,
        challenger=CHALLENGER,
        data=DATA,
    )


def test_a_promotion_shows_champion_against_challenger(tmp_path):
    record = promotion(tmp_path)
    task = record["tasks"]["migraine"]
    difference = task["difference"]

    text = promotion_markdown(record)

    assert text.startswith("## Retrain: promoted (retrain-20261128-090000)\n")
    assert (
        f"| migraine (primary) | roc_auc | {task['champion']:.4f} | {task['challenger']:.4f} "
        f"| {difference['difference']:+.4f} "
        f"| [{difference['ci_low']:+.4f}, {difference['ci_high']:+.4f}] | 0.0% |"
    ) in text
    assert "| task | metric | champion | challenger | gain | 95% interval |" in text
    for recall in task["class_recall"]:
        assert f"| migraine | {recall['label']} | {recall['rows']:,} |" in text
    for check in record["checks"]:
        assert f"- passed `{check['name']}` (migraine): {check['detail']}" in text
    assert (
        "| `classifier-champion.skops` | xgboost (md5 `01234567`) | lightgbm (md5 `fedcba98`) |"
    ) in text
    assert "commit `aaaaaaaaaaaa`" in text and "commit `bbbbbbbbbbbb`" in text
    assert (
        "Data: feedback `data/feedback/feedback.csv`: 1,200 rows, 600 new, "
        "40 after an intervention left out; 1,834 test" in text
    )


def test_a_kept_champion_marks_the_failed_check(tmp_path):
    record = promotion(tmp_path, rule=PromotionRule(min_gain=0.5, max_class_drop=0.05))

    text = promotion_markdown(record)

    assert text.startswith("## Retrain: kept (retrain-20261128-090000)\n")
    assert "- **failed** `min_gain` (migraine):" in text
    assert "- passed `interval_excludes_zero` (migraine):" in text


def test_a_skip_says_why(tmp_path):
    reason = "37 new labels, fewer than min_new_labels 200: no retraining"
    record = write_skip(tmp_path / "p.json", reason, champion=CHAMPION, data=DATA)

    text = promotion_markdown(record, source="p.json")

    assert text.splitlines()[:3] == ["## Retrain: skipped", "", f"**skipped**: {reason}"]
    assert "| task |" not in text
    assert text.endswith("Rendered from `p.json`.\n")


def test_an_undefined_interval_is_shown_as_such(tmp_path):
    record = promotion(tmp_path)
    record["tasks"]["migraine"]["difference"].update(ci_low=None, ci_high=None)
    assert "| [n/a, n/a] |" in promotion_markdown(record)


@pytest.mark.parametrize("argv", [[], ["promotion.json"]], ids=["default-path", "path"])
def test_the_module_prints_the_markdown(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    record = promotion(tmp_path / "reports")
    if argv:
        (tmp_path / "reports" / "promotion.json").rename(tmp_path / "promotion.json")

    assert main(argv) == 0
    source = argv[0] if argv else "reports/promotion.json"
    assert capsys.readouterr().out == promotion_markdown(record, source=source)
