"""Saving and loading fitted objects with skops instead of raw pickle.

skops refuses to load any type it does not trust. Rather than trusting
whatever a file asks for, we trust classes (CamelCase names) from an explicit
list of packages whose code we already run, plus a few named numpy types. A
file that asks for anything else (say, `os.system` or a library function) is
rejected with the type named.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

TRUSTED_PACKAGES = ("migraine_ml.", "sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.")
TRUSTED_NAMES = frozenset({"numpy.dtype", "numpy.ndarray", "collections.OrderedDict"})


class UntrustedModelError(RuntimeError):
    """A model file asks for a type outside the trusted packages."""


def save(obj: Any, path: str | Path) -> str:
    """Write `obj` as a skops file; returns its md5 (the hash DVC records)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_canonical(sio.dumps(obj)))
    return file_md5(path)


def _canonical(archive: bytes) -> bytes:
    """The same skops archive with stable ids, names and timestamps.

    skops names objects by their memory address and stamps the zip with the
    current time, so refitting the same model gives a different file and DVC
    would see a change. Renumbering ids in order of appearance and fixing the
    timestamps makes equal models byte-identical files.
    """
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        schema = json.loads(source.read("schema.json"))
        members = {info.filename: source.read(info) for info in source.infolist()}
        compression = source.infolist()[0].compress_type
    renumbered: dict[int, int] = {}
    renamed: dict[str, str] = {}  # member files (.npy arrays, .bin boosters, ...)

    def walk(node: object) -> object:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    value = renumbered.setdefault(value, len(renumbered))
                elif key == "file" and isinstance(value, str) and value in members:
                    suffix = Path(value).suffix
                    value = renamed.setdefault(value, f"{len(renamed):06d}{suffix}")
                out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    schema = walk(schema)
    unreferenced = set(members) - set(renamed) - {"schema.json"}
    if unreferenced:
        raise ValueError(f"skops archive has files the schema does not name: {unreferenced}")
    files = {renamed[name]: content for name, content in members.items() if name in renamed}
    files["schema.json"] = json.dumps(schema, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as target:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            target.writestr(info, files[name])
    return out.getvalue()


def trusted_types(path: str | Path) -> list[str]:
    """The types the file needs, all of which must come from a trusted package."""
    needed = sio.get_untrusted_types(file=path)
    refused = [t for t in needed if not _is_trusted(t)]
    if refused:
        raise UntrustedModelError(f"{path}: refuses to load untrusted types {refused}")
    return needed


def _is_trusted(type_name: str) -> bool:
    if type_name in TRUSTED_NAMES:
        return True
    is_class = type_name.rsplit(".", 1)[-1].lstrip("_")[:1].isupper()
    return type_name.startswith(TRUSTED_PACKAGES) and is_class


def load(path: str | Path) -> Any:
    return sio.load(path, trusted=trusted_types(path))


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
