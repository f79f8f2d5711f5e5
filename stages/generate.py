"""generate: the embedded default dataset, a synthetic migraine cohort, and its oracle."""

from __future__ import annotations

import logging
from pathlib import Path

from migraine_ml import persist
from migraine_ml.data.synthetic import generate_cohort, oracle_scores
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("generate")


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--out", required=True, help="CSV to write")
    cli.add_argument("--oracle", required=True, help="oracle scores JSON to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    cohort = generate_cohort(seed=params["seed"], **params["data"]["synthetic"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cohort.data.to_csv(args.out, index=False, lineterminator="\n")
    # The oracle describes this exact file: evaluate compares hashes before using it.
    oracle = oracle_scores(cohort) | {"data_md5": persist.file_md5(args.out)}
    write_json(oracle, args.oracle)
    logger.info(
        "%d rows -> %s; oracle roc_auc=%.3f severity_r2=%.3f",
        len(cohort.data),
        args.out,
        oracle["roc_auc"],
        oracle["severity_r2"],
    )


if __name__ == "__main__":
    main()
