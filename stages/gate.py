"""gate: exit non-zero unless the last evaluation passed the quality gate (for CI)."""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--gate", default="reports/gate.json", help="gate JSON from evaluate")
    args = cli.parse_args()
    try:
        with open(args.gate, encoding="utf-8") as fh:
            gate = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        sys.exit(f"quality gate: cannot read {args.gate} ({err}); run `make repro` first")
    if not gate["passed"]:
        print("quality gate FAILED:", *gate["failures"], sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"quality gate passed ({len(gate['checks'])} champions checked)")


if __name__ == "__main__":
    main()
