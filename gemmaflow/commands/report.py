"""`gemmaflow report`: rebuild report.html (plots, no network) from the files a run left behind."""

from __future__ import annotations

import argparse
import textwrap

from gemmaflow.commands.common import UserError


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from gemmaflow.report import ReportInputError, write_report

    try:
        path = write_report(args.run_dir, args.out)
    except ReportInputError as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="build a self-contained report.html with plots from a run folder (curate output alone works too)",
        description=(
            "Read stats.json (or curated/stats.json), the tokenizer report, shard manifests and training "
            "metrics found in RUN_DIR and write one HTML page with inline SVG plots. Sections whose files "
            "are absent say so. Layout and plots: docs/run-report.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent(
            """\
            examples:
              gemmaflow report runs/demo/                   # writes runs/demo/report.html
              gemmaflow report curated/                     # a bare `gemmaflow curate` output folder
              gemmaflow report runs/demo/ --out report.html
            """
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (gemmaflow demo) or a curate output folder")
    parser.add_argument("--out", metavar="FILE", help="where to write the page (default: RUN_DIR/report.html)")
    parser.set_defaults(handler=run)
