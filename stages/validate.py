"""validate: check the data against its schema; exit non-zero on a hard failure."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from migraine_ml.data.schema import load_schema
from migraine_ml.data.validation import problem_lines, render_html, validate_file
from stages.common import parser, read_params, setup_logging, write_json

logger = logging.getLogger("validate")


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--data", required=True, help="CSV to validate")
    cli.add_argument("--schema", required=True, help="schema YAML")
    cli.add_argument("--feedback", help="labelled feedback CSV, checked with the data")
    cli.add_argument("--report", required=True, help="validation JSON to write")
    cli.add_argument("--html", required=True, help="validation HTML to write")
    args = cli.parse_args()
    setup_logging()
    params = read_params(args.params)
    report = validate_file(
        args.data,
        load_schema(args.schema),
        feedback=args.feedback,
        **params["validate"],
        outlier_iqr_factor=params["preprocess"]["outlier_iqr_factor"],
        outlier_min_distinct=params["preprocess"]["outlier_min_distinct"],
    )
    write_json(report.to_dict(), args.report)
    Path(args.html).write_text(
        render_html(report, title=f"Validation of {args.data}"), encoding="utf-8"
    )
    for line in problem_lines(report.warnings):
        logger.warning("%s", line)
    if not report.passed:
        for line in problem_lines(report.failures):
            logger.error("%s", line)
        logger.error("validation FAILED for %s (details in %s)", args.data, args.html)
        sys.exit(1)
    logger.info(
        "validation passed: %d rows, %d warnings", report.summary["rows"], len(report.warnings)
    )


if __name__ == "__main__":
    main()
