"""Imports run one way: stages -> library <- app (docs: DESIGN.md, "Layers").

Checked on the source with `ast`: app/ never imports the stages or the training
modules (the zoo, the searches, MLflow tracking), and the library never reaches
up into the service or the stages.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING = tuple(
    f"migraine_ml.modeling.{name}"
    for name in ("tasks", "plan", "tracking", "zoo", "training", "tuning")
)


def _imports(source: str, *, package: str) -> set[str]:
    """Every module `source` imports: relative imports resolved, `from a import b` as a and a.b."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}".rstrip(".")
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    return modules


def _package(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1])


def _offending(files, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in _imports(path.read_text(), package=_package(path))
        if any(module == f or module.startswith(f"{f}.") for f in forbidden)
    )


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from stages.smoke import check", "stages.smoke"),
        ("from migraine_ml.modeling import zoo", "migraine_ml.modeling.zoo"),
        ("from ..modeling import tasks", "migraine_ml.modeling.tasks"),
        ("import app.security", "app.security"),
    ],
)
def test_the_scan_sees_every_form_of_import(source, module):
    assert module in _imports(source, package="migraine_ml.monitoring")


def test_app_never_imports_stages_or_training_code():
    assert _offending((ROOT / "app").glob("*.py"), ("stages", *TRAINING)) == []


def test_library_never_imports_app_or_stages():
    assert _offending((ROOT / "migraine_ml").rglob("*.py"), ("app", "stages")) == []


def test_loading_the_service_loads_no_training_code_or_pipeline_tools():
    """Indirect imports count too: what `import app` pulls in, in a fresh interpreter.

    Pins a bug: the app imported the feature transformers, which imported the task
    rows (training code) for fitting the builder.
    """
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, app; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    heavy = ("stages", "mlflow", "dvc", "dvclive", "matplotlib", *TRAINING)
    assert [m for m in loaded if any(m == h or m.startswith(f"{h}.") for h in heavy)] == []


def test_loading_a_subsampled_model_loads_no_training_code(tmp_path):
    """Pins a bug: the SVM/KNN wrapper lived in the zoo, so the service imported the
    whole zoo (training code) whenever such a model was champion."""
    from sklearn.neighbors import KNeighborsClassifier

    from migraine_ml import persist
    from migraine_ml.modeling.subsampled import Subsampled

    model = Subsampled(KNeighborsClassifier(n_neighbors=1), max_rows=10).fit(
        [[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1]
    )
    path = tmp_path / "knn.skops"
    persist.save(model, path)
    code = (
        "import sys, app; from migraine_ml import persist; "
        f"persist.load({str(path)!r}); print(' '.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "migraine_ml.modeling.subsampled" in loaded
    heavy = ("mlflow", "dvc", *TRAINING)
    assert [m for m in loaded if any(m == h or m.startswith(f"{h}.") for h in heavy)] == []
