from migraine_ml.evaluation.pr_report import (
    metrics_table,
    params_table,
    plot_kind,
    render,
    side_by_side,
)


def test_empty_diffs_say_so():
    assert params_table({}) == "No parameter changed.\n"
    assert metrics_table({}) == "No metric changed.\n"


def test_metric_rows_carry_intervals_and_signed_change():
    diff = {
        "m.json": {
            "a.auc": {"old": 0.7, "new": 0.75, "diff": 0.05},
            "a.auc_ci_low": {"old": 0.6, "new": 0.7, "diff": 0.1},
            "a.auc_ci_high": {"old": 0.8, "new": 0.8, "diff": 0.0},
            "gate_passed": {"old": True, "new": False},
        }
    }
    table = metrics_table(diff)
    assert "| m.json | `a.auc` | 0.7000 | 0.7500 [0.7000, 0.8000] | +0.0500 |" in table
    assert "| m.json | `gate_passed` | True | False | — |" in table
    assert "ci_low" not in table


def test_side_by_side_draws_every_plot_kind(tmp_path):
    points = [{"x": 1.0, "y": 2.0}, {"x": 2.0, "y": 3.0}]
    for template in ("simple", "bar_horizontal", "scatter"):
        path = side_by_side(
            points,
            points,
            x="x",
            y="y",
            kind=plot_kind(template),
            title=template,
            path=tmp_path / f"{template}.png",
        )
        assert path.stat().st_size > 1000
    confusion = [{"actual": "0", "predicted": "1"}, {"actual": "1", "predicted": "1"}]
    path = side_by_side(
        None,
        confusion,
        x="actual",
        y="predicted",
        kind="confusion",
        title="c",
        path=tmp_path / "c.png",
    )
    assert path.exists()
    assert side_by_side(
        [], {"roc": []}, x="x", y="y", kind="line", title="e", path=tmp_path / "e.png"
    ).exists()


def test_render_without_a_gate_file():
    text = render(base="main", params_diff={}, metrics_diff={}, gate=None, base_gate=None, plots=[])
    assert "no `reports/gate.json`" in text
