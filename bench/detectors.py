"""Cost of the default detector suite: readings/s in one process on batched input, the way the pipeline feeds it.

The demo plant is repeated in whole copies to at least N points (default 1,000); each batch carries `--per-batch` readings per
point (a gateway batch, or one pipeline commit), normal values with noise, and goes through
`riskwatch.pipeline.detect_groups` with `default_detectors`, the same call the live pipeline and `riskwatch eval`
make. Reported: readings/s over the timed batches, and findings (a quiet plant should produce none); then each
detector alone on the same batches (`--each`), so a slow one shows, with the threshold detector alone as the
baseline the suite's cost is a ratio of.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from config.load import DEMO, load_plant
from riskwatch.pipeline import default_detectors, detect_groups, tick_all
from simulators.demo_plant import DemoPlant

EPILOG = """examples:
  python -m bench.detectors                         # ~1,000 points, 10 readings per point per batch, 30 batches
  python -m bench.detectors --points 5000 --per-batch 100 --json bench-detectors.json
  python -m bench.detectors --each                  # also each detector alone, and the ratio to threshold-only
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detectors", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000, help="points in the plant (default %(default)s)")
    ap.add_argument("--per-batch", type=int, default=10, help="readings per point per batch (default %(default)s)")
    ap.add_argument("--batches", type=int, default=30, help="timed batches (default %(default)s)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--each", action="store_true", help="also time each detector of the suite alone")
    args = ap.parse_args(argv)

    base = load_plant(DEMO)
    plant = base.scaled(-(-args.points // len(base.points)))  # whole copies: each keeps its status points
    model = DemoPlant(plant, seed=1, incident_at=None)
    t0 = 1_800_000_000.0
    detectors = default_detectors(plant, t0)
    print(f"{len(plant.points):,} points, {args.per_batch} readings each per batch, {args.batches} batches "
          f"({len(plant.points) * args.per_batch:,} readings per batch)", file=sys.stderr)
    # the readings are made before timing: this measures the detectors, not the model
    batches = []
    for b in range(args.batches + 1):
        times = t0 + b * args.per_batch + np.arange(args.per_batch, dtype=float)
        rows = np.stack([model.sample_array(t - t0) for t in times], axis=1)  # points x readings
        batches.append([(pid, times, times, rows[i]) for i, pid in enumerate(model.point_ids)])
    readings = len(plant.points) * args.per_batch * args.batches
    elapsed, findings = _run(detectors, batches, args.batches)
    result = {"points": len(plant.points), "readings_per_batch": len(plant.points) * args.per_batch,
              "readings": readings, "seconds": round(elapsed, 3), "readings_per_s": round(readings / elapsed),
              "findings": findings, "detectors": [type(d).__name__ for d in detectors]}
    if args.each:
        alone = {}
        for i, d in enumerate(detectors):
            name = type(d).__name__
            print(f"{name} alone", file=sys.stderr)
            secs, _ = _run([default_detectors(plant, t0)[i]], batches, args.batches)
            alone[name] = round(readings / secs)
        result["alone_readings_per_s"] = alone
        result["suite_cost_vs_threshold_only"] = round(alone["ThresholdDetector"] / result["readings_per_s"], 2)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def _run(detectors, batches, n: int) -> tuple[float, int]:
    detect_groups(detectors, batches[0])  # warm-up: first sight of every point
    findings = 0
    started = time.perf_counter()
    for k, groups in enumerate(batches[1:], 1):
        findings += len(detect_groups(detectors, groups))
        findings += len(tick_all(detectors, groups[0][1][-1]))
        if k % 10 == 0:
            print(f"  {k}/{n} batches", file=sys.stderr, flush=True)
    return time.perf_counter() - started, findings


if __name__ == "__main__":
    sys.exit(main())
