"""python -m bench.nab: run riskwatch's anomaly scorer over the NAB corpus and score it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.nab.run import run
from detectors.anomaly.score import FIRE_SCORE

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES = """examples:
  python -m bench.nab                                  # score /work/shared/nab, print the summary
  python -m bench.nab --json nab.json                  # also write the figures as JSON
  python -m bench.nab --results /tmp/nab-results       # also write NAB-layout result CSVs
  python -m bench.nab --nab ~/NAB --workers 1 --quiet  # another copy of the corpus, one process
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.nab", description=__doc__, epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "nab",
                    help="NAB folder holding data/ and labels/ (default: ../shared/nab from the repo root)")
    ap.add_argument("--results", type=Path, help="write <DIR>/riskwatch/<category>/riskwatch_<file>.csv")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--workers", type=int, default=2, help="processes scoring files in parallel (default 2)")
    ap.add_argument("--threshold", type=float, default=FIRE_SCORE,
                    help=f"the fixed, label-free threshold (default {FIRE_SCORE}: SPOT risk q = 1e-3)")
    ap.add_argument("--quiet", action="store_true", help="no per-file progress on stderr")
    args = ap.parse_args(argv)
    report = run(args.nab, args.results, args.workers, fixed=args.threshold, quiet=args.quiet)
    summary = {k: report[k] for k in ("oracle", "fixed", "points_per_second")}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({**summary, "oracle_threshold": report["oracle_threshold"],
                      "fixed_threshold": report["fixed_threshold"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
