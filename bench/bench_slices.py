"""Slices at competition scale (4,883 images, ~490,000 predictions): build and threshold move.

    python bench/bench_slices.py [--repeat 3]

Times, in one process and the same run: the evaluation itself (the peer: the matching every
page already pays once), `build_slices` for every automatic dimension (the goal: under 2 s),
and `SliceIndex.table(t)` at new score thresholds (what a slider move recomputes; goal well
under the 300 ms a move may take in the browser). Prints min / median / max per figure.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO / "bench" / "data" / "competition"


def _timed(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def _line(name, times):
    return (f"{name:<44} min {min(times) * 1000:8.0f} ms  median {statistics.median(times) * 1000:8.0f} ms  "
            f"max {max(times) * 1000:8.0f} ms  (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (DATA / "submission.csv").exists():
        subprocess.run([sys.executable, str(REPO / "bench" / "make_competition_scale.py")], check=True)
    from core.calibration import best_thresholds, calibration
    from core.dataset import load_coco
    from core.evaluation import evaluate
    from core.prediction_files import load_predictions
    from core.slices import build_slices
    from core.tide_per_class import tide_per_class

    dataset = load_coco(DATA / "train.json")
    preds = load_predictions(DATA / "submission.csv", dataset=dataset)
    print(f"{len(dataset.images):,} images, {len(dataset.annotations):,} GT boxes, {len(preds):,} predictions")
    ev, t_eval = _timed(lambda: evaluate(dataset, preds), args.repeat)
    build_slices(ev)  # compiles the slice kernels on a fresh checkout (cached afterwards)
    index, t_build = _timed(lambda: build_slices(ev), args.repeat)
    n_slices = sum(len(s.dimension.slices) for s in index.scored)
    thresholds = [0.05 + 0.01 * i for i in range(10)]
    t_move = []
    for t in thresholds:
        start = time.perf_counter()
        index.table(t)
        t_move.append(time.perf_counter() - start)
    _, t_cal = _timed(lambda: calibration(ev), args.repeat)
    _, t_best = _timed(lambda: best_thresholds(ev), args.repeat)
    _, t_tide = _timed(lambda: tide_per_class(ev), args.repeat)
    from core.coco_analyze import coco_analyze
    _, t_analyze = _timed(lambda: coco_analyze(ev), 1)
    print(_line("evaluate (peer: matching, once per file)", t_eval))
    print(_line(f"build_slices ({len(index.scored)} dimensions, {n_slices} slices)", t_build))
    print(_line("slice table at a new score threshold", t_move))
    print(_line("calibration (10 bins, per class)", t_cal))
    print(_line("best-F1 thresholds per class", t_best))
    print(_line("TIDE dAP per class", t_tide))
    print(_line("COCO analyze (no supercategories)", t_analyze))
    print(f"build_slices / evaluate (medians): {statistics.median(t_build) / statistics.median(t_eval):.2f}")


if __name__ == "__main__":
    main()
