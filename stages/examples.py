"""examples: write the example datasets (a patient diary, a yes/no cohort) as CSV files."""

from __future__ import annotations

import argparse
from pathlib import Path

from migraine_ml.data.examples import headache_diary, yes_no_cohort


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--out-dir", default="data/examples", help="where the CSV files go")
    cli.add_argument("--seed", type=int, default=42)
    args = cli.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("headache_diary.csv", headache_diary(seed=args.seed)),
        ("headache_yes_no.csv", yes_no_cohort(seed=args.seed)),
    ):
        frame.to_csv(out / name, index=False)
        print(f"wrote {out / name}: {len(frame)} rows, {frame.shape[1]} columns")


if __name__ == "__main__":
    main()
