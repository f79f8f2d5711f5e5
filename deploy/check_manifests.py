"""Offline checks of the Kubernetes manifests in k8s/ and of the Dockerfile (`make lint`).

For every overlay in k8s/overlays: render it with `kubectl kustomize`; validate each
document with kubernetes-validate --strict against the Kubernetes versions below; validate
the custom resources (ServiceMonitor, PrometheusRule, ScaledObject) against the schemas
vendored in k8s/schemas; then run checkov on the rendered manifests and on the Dockerfile,
skipping only the checks of deploy/checkov-skips.yaml. kubernetes-validate and checkov
come from build/tools-venv (deploy/requirements-tools.txt), apart from the project's venv
because checkov's pins clash with it.

Exit status: 0 all passed, 1 a check failed, 2 a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
OVERLAYS = K8S / "overlays"
SCHEMAS = K8S / "schemas"
SECRETS_TEMPLATE = K8S / "secrets.template.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SKIPS = ROOT / "deploy" / "checkov-skips.yaml"
TOOLS = ROOT / "build" / "tools-venv" / "bin"
RENDERED = ROOT / "build" / "k8s-rendered"
# The oldest minor still run by managed clusters' extended support, and the newest the
# pinned kubernetes-validate knows (1.37 in 1.37.0): an API removed or added in between fails.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

TOOLS_HINT = "make k8s-tools (python3 -m venv build/tools-venv && "
TOOLS_HINT += "build/tools-venv/bin/pip install -r deploy/requirements-tools.txt)"
KUBECTL_HINT = (
    "kubectl >= 1.27 (kustomize v5; Debian's kubernetes-client 1.20 is too old): "
    "the `kubectl` package of the Kubernetes apt repository, or any kubectl binary on PATH"
)
# kubernetes-validate's word for a kind it has no schema for
NO_SCHEMA = re.compile(r"Couldn't find schema for kind (\S+) with api version (\S+)")


class ToolMissing(Exception):
    """A command this check needs is not installed; the message says how to get it."""


def shown(path: Path) -> str:
    """The path as a reader of this repository names it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


@dataclass
class Report:
    """What one run found: a line per step, and every problem."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def step(self, name: str, found: list[str], summary: str) -> None:
        self.problems.extend(f"{name}: {problem}" for problem in found)
        verdict = f"FAILED ({len(found)})" if found else "ok"
        self.lines.append(f"{name:<26} {verdict:<11} {summary}")


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise ToolMissing(f"kubectl not found: install {KUBECTL_HINT}")
    return path


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        raise ToolMissing(f"{path} not found: {TOOLS_HINT}")
    return str(path)


def render(overlay: Path) -> str:
    """The overlay's manifests as `kubectl kustomize` renders them."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise ValueError(f"kubectl kustomize {shown(overlay)}: {result.stderr.strip()}")
    return result.stdout


def documents(text: str) -> list[dict]:
    return [document for document in yaml.safe_load_all(text) if document]


def name_of(document: dict) -> str:
    return f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"


def schema_path(api_version: str, kind: str) -> Path:
    """k8s/schemas/<group>/<kind>_<version>.json, kubeconform's layout."""
    group, _, version = api_version.rpartition("/")
    return SCHEMAS / group / f"{kind.lower()}_{version}.json"


def is_custom(document: dict) -> bool:
    return schema_path(document["apiVersion"], document["kind"]).exists()


def custom_resource_problems(document: dict) -> list[str]:
    """Where the document breaks its vendored schema, one line per error."""
    schema = json.loads(schema_path(document["apiVersion"], document["kind"]).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{name_of(document)}: {'.'.join(map(str, error.absolute_path)) or '(root)'}: "
        f"{error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    ]


def kubernetes_validate(path: Path, versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> list[str]:
    """kubernetes-validate --strict's errors for the file. A kind it has no schema for is
    an error too, unless k8s/schemas vendors one (custom_resource_problems checks those)."""
    argv = [tool("kubernetes-validate"), "--strict", "--quiet"]
    for version in versions:
        argv += ["-k", version]
    result = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=120)
    problems = []
    for line in (result.stdout + result.stderr).splitlines():
        unknown = NO_SCHEMA.search(line)
        if unknown and schema_path(unknown.group(2), unknown.group(1)).exists():
            continue
        if line.strip():
            problems.append(line.replace(str(ROOT) + "/", ""))
    if result.returncode != 0 and not problems:
        problems.append(f"kubernetes-validate exited {result.returncode}")
    return problems


def load_skips() -> dict[str, dict[str, str]]:
    """{framework: {check id: reason}}; a skip without a reason is refused."""
    skips = yaml.safe_load(SKIPS.read_text())
    for framework, checks in skips.items():
        for check, reason in checks.items():
            if not str(reason or "").strip():
                raise ValueError(f"{SKIPS}: {framework} {check} has no reason")
    return skips


def checkov(manifests: list[Path], skips: dict[str, dict[str, str]]) -> tuple[list[str], str]:
    """checkov's failed checks on the manifests and the Dockerfile, and its counts."""
    skipped = sorted({check for checks in skips.values() for check in checks})
    argv = [tool("checkov"), "--skip-download", "--quiet", "--output", "json"]
    argv += ["--framework", "kubernetes", "dockerfile", "--skip-check", ",".join(skipped)]
    for path in [*manifests, DOCKERFILE]:
        argv += ["--file", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov exited {result.returncode}: {result.stderr[-2000:]}"], "no report"
    # one framework's report comes alone, several as a list
    reports = reports if isinstance(reports, list) else [reports]
    problems, counts = [], []
    for report in reports:
        summary = report["summary"]
        counts.append(
            f"{report['check_type']} {summary['passed']} passed, {summary['failed']} failed, "
            f"{summary['skipped']} skipped"
        )
        if summary.get("parsing_errors"):
            problems.append(f"{report['check_type']}: {summary['parsing_errors']} parsing errors")
        for failed in report["results"]["failed_checks"]:
            where = Path(failed["file_path"]).name
            problems.append(
                f"{failed['check_id']} {failed['check_name']}: {failed['resource']} ({where})"
            )
    version = reports[0]["summary"]["checkov_version"] if reports else "?"
    return problems, f"checkov {version}: " + "; ".join(counts)


def check(overlays: list[Path]) -> Report:
    report = Report()
    RENDERED.mkdir(parents=True, exist_ok=True)
    rendered, custom = [], []
    for overlay in overlays:
        try:
            text = render(overlay)
        except ValueError as error:
            report.step(f"render {overlay.name}", [str(error)], "kubectl kustomize")
            continue
        path = RENDERED / f"{overlay.name}.yaml"
        path.write_text(text)
        rendered.append(path)
        docs = documents(text)
        custom += [(overlay.name, document) for document in docs if is_custom(document)]
        report.step(f"render {overlay.name}", [], f"{len(docs)} documents -> {shown(path)}")

    versions = ", ".join(KUBERNETES_VERSIONS)
    for path in [*rendered, SECRETS_TEMPLATE]:
        report.step(
            f"validate {path.stem}",
            kubernetes_validate(path),
            f"kubernetes-validate --strict, Kubernetes {versions}",
        )

    found = [
        f"{overlay}: {problem}"
        for overlay, document in custom
        for problem in custom_resource_problems(document)
    ]
    kinds = sorted({f"{overlay}:{name_of(document)}" for overlay, document in custom})
    report.step("custom resources", found, f"k8s/schemas: {', '.join(kinds)}")

    skips = load_skips()
    found, summary = checkov(rendered, skips)
    report.step("checkov", found, summary)
    report.lines.append(f"checkov skips ({shown(SKIPS)}):")
    for framework, checks in skips.items():
        for check_id, reason in checks.items():
            report.lines.append(f"  {framework:<10} {check_id:<11} {reason.split('. ')[0]}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "overlays", nargs="*", type=Path, help="overlay directories (default: k8s/overlays/*)"
    )
    args = parser.parse_args()
    overlays = args.overlays or sorted(path for path in OVERLAYS.iterdir() if path.is_dir())
    try:
        report = check([overlay.resolve() for overlay in overlays])
    except ToolMissing as missing:
        print(f"check_manifests: {missing}", file=sys.stderr)
        return 2
    print("\n".join(report.lines))
    if report.problems:
        print(f"\n{len(report.problems)} problems:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in report.problems), file=sys.stderr)
        return 1
    print("all manifest checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
