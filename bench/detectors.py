"""Cost of the default detector suite: readings/s in one process on batched input, the way the pipeline feeds it.

The demo plant is repeated in whole copies to at least N points (default 1,000); each batch carries `--per-batch` readings per
point (a gateway batch, or one pipeline commit), normal values with noise, and goes through
`riskwatch.pipeline.detect_groups` with `default_detectors`, the same call the live pipeline and `riskwatch eval`
make. Reported: readings/s over the timed batches, and findings (a quiet plant should produce none).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from config.load import DEMO, load_plant
from riskwatch.pipeline import default_detectors, detect_groups
from simulators.demo_plant import DemoPlant

EPILOG = """examples:
  python -m bench.detectors                         # ~1,000 points, 10 readings per point per batch, 30 batches
  python -m bench.detectors --points 5000 --per-batch 100 --json bench-detectors.json
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detectors", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000, help="points in the plant (default %(default)s)")
    ap.add_argument("--per-batch", type=int, default=10, help="readings per point per batch (default %(default)s)")
    ap.add_argument("--batches", type=int, default=30, help="timed batches (default %(default)s)")
    ap.add_argument("--json", help="also write the results to this file")
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
    detect_groups(detectors, batches[0])  # warm-up: first sight of every point
    findings = 0
    started = time.perf_counter()
    for k, groups in enumerate(batches[1:], 1):
        findings += len(detect_groups(detectors, groups))
        for d in detectors:
            findings += len(d.tick(groups[0][1][-1]))
        if k % 10 == 0:
            print(f"  {k}/{args.batches} batches", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    readings = len(plant.points) * args.per_batch * args.batches
    result = {"points": len(plant.points), "readings_per_batch": len(plant.points) * args.per_batch,
              "readings": readings, "seconds": round(elapsed, 3), "readings_per_s": round(readings / elapsed),
              "findings": findings, "detectors": [type(d).__name__ for d in detectors]}
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
