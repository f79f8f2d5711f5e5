"""The models the service serves: exactly what `dvc repro` wrote to models/, verified.

At start-up every file in models/ is hashed the way DVC hashes a directory and
compared with the `models` output recorded in dvc.lock, and each model file
with its md5 in the manifest. Any mismatch (a tampered, stale or half-copied
model) leaves the store not ready: the service answers 503 and never predicts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from migraine_ml import persist
from migraine_ml.data.schema import Schema, schema_from_dict
from migraine_ml.modeling.fastpath import CompiledPipeline, decode_categories, reference_output
from migraine_ml.pipeline import RANKS

logger = logging.getLogger(__name__)

# What the service loads of models/: the champion it serves and the runner-up it describes.
SERVED_RANKS = RANKS


def file_hashes(directory: Path) -> dict[str, str]:
    """md5 of every file below `directory`, by its relative POSIX path."""
    return {
        path.relative_to(directory).as_posix(): persist.file_md5(path)
        for path in directory.rglob("*")
        if path.is_file()
    }


def dvc_dir_md5(directory: Path, hashes: dict[str, str] | None = None) -> str:
    """The `.dir` hash DVC records for a directory output (md5 of its sorted listing)."""
    hashes = file_hashes(directory) if hashes is None else hashes
    listing = [{"md5": hashes[relpath], "relpath": relpath} for relpath in sorted(hashes)]
    # DVC's content address, not a security measure
    digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode("utf-8"), usedforsecurity=False)
    return digest.hexdigest() + ".dir"


def locked_md5(lock_path: Path, out_path: str) -> str | None:
    """The hash dvc.lock records for the output at `out_path`, if any."""
    lock = yaml.safe_load(lock_path.read_text())
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"].rstrip("/") == out_path.rstrip("/"):
                return out["md5"]
    return None


@dataclass
class ServedModel:
    name: str
    task: str
    rank: str
    file: str
    md5: str
    pipeline: Any
    fast: CompiledPipeline | None
    fast_path_note: str
    classes: list[Any] | None = None

    @property
    def version(self) -> str:
        return self.md5[:12]

    def predict(self, matrix: np.ndarray, schema: Schema) -> np.ndarray:
        """Probabilities (classifier) or predictions (regressor) for raw feature rows,
        category values as codes."""
        if self.fast is not None:
            return self.fast.predict(matrix)
        return reference_output(self.pipeline, decode_categories(matrix, schema))


@dataclass
class ModelStore:
    models_dir: Path
    lock_path: Path
    verify: bool = True
    ready: bool = False
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    schema: Schema | None = None
    models: dict[tuple[str, str], ServedModel] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def load(self, *, fast_path: bool = True, pipelines: bool = True) -> ModelStore:
        """Verify and load; on any problem the store stays not ready and says why.

        With `pipelines=False` every file is still verified, but no model is
        unpickled: for a process that reads the manifest and the drift reference
        and never predicts (the drift monitor), which saves seconds of start-up
        and the models' memory.
        """
        self.ready, self.problems, self.models = False, [], {}
        manifest_path = self.models_dir / "manifest.json"
        if not manifest_path.exists():
            self.problems.append(f"{manifest_path} not found: run `make repro` first")
            return self
        hashes: dict[str, str] = {}
        if self.verify:
            hashes = file_hashes(self.models_dir)  # each file read once, reused below
            if not self._verified(hashes):
                return self
        self.manifest = json.loads(manifest_path.read_text())
        self.schema = schema_from_dict(self.manifest["schema"])
        reference_path = self.models_dir / "reference.json"
        self.reference = json.loads(reference_path.read_text()) if reference_path.exists() else {}
        parity = {}
        parity_path = self.models_dir / "fastpath.json"
        if parity_path.exists():
            parity = json.loads(parity_path.read_text())
        for entry in self.manifest["models"]:
            if entry["rank"] not in SERVED_RANKS:
                continue  # the reference model is for evaluation; dvc.lock still covers it
            path = self.models_dir / entry["file"]
            actual = hashes.get(entry["file"]) or persist.file_md5(path)
            if actual != entry["md5"]:
                self.problems.append(f"{entry['file']}: md5 {actual} != manifest {entry['md5']}")
                continue
            if pipelines:
                pipeline = persist.load(path)
                fast, note = self._fast_path(pipeline, parity.get(entry["file"]), fast_path)
            else:
                pipeline, fast, note = None, None, "verified, not loaded (never predicts here)"
            self.models[(entry["task"], entry["rank"])] = ServedModel(
                name=entry["name"],
                task=entry["task"],
                rank=entry["rank"],
                file=entry["file"],
                md5=entry["md5"],
                pipeline=pipeline,
                fast=fast,
                fast_path_note=note,
                classes=entry.get("classes"),
            )
        if self.problems:
            return self
        self.ready = True
        logger.info(
            "models ready: %s",
            ", ".join(f"{m.task}/{m.rank}={m.name}@{m.version}" for m in self.models.values()),
        )
        return self

    def _verified(self, hashes: dict[str, str]) -> bool:
        if not self.lock_path.exists():
            self.problems.append(f"{self.lock_path} not found: cannot verify the models")
            return False
        expected = locked_md5(self.lock_path, self.models_dir.name)
        if expected is None:
            self.problems.append(f"{self.lock_path} records no '{self.models_dir.name}' output")
            return False
        actual = dvc_dir_md5(self.models_dir, hashes)
        if actual != expected:
            self.problems.append(
                f"{self.models_dir} hash {actual} does not match dvc.lock {expected}: the "
                "models are not the ones `dvc repro` recorded (run `dvc checkout` or "
                "`dvc repro`)"
            )
            return False
        return True

    def _fast_path(self, pipeline, parity: dict | None, enabled: bool):
        if not enabled:
            return None, "disabled by configuration: scikit-learn pipeline"
        if not parity or not parity.get("passed"):
            reason = (parity or {}).get("reason") or "no parity record from training"
            return None, f"scikit-learn pipeline (fast path not used: {reason})"
        try:
            compiled = CompiledPipeline(pipeline, self.schema)
        except Exception as err:  # any failure keeps the reference path
            return None, f"scikit-learn pipeline (fast path failed to compile: {err})"
        return compiled, (
            f"numpy fast path (parity on the test split: max |diff| "
            f"{parity['max_abs_diff']:.1e} <= {parity['tolerance']})"
        )

    def get(self, task: str, rank: str = "champion") -> ServedModel | None:
        return self.models.get((task, rank))

    def describe(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "problems": self.problems,
            "models": [
                {
                    "name": m.name,
                    "task": m.task,
                    "rank": m.rank,
                    "file": m.file,
                    "version": m.version,
                    "md5": m.md5,
                    "serving": m.fast_path_note,
                    "classes": m.classes,
                }
                for m in self.models.values()
            ],
        }
