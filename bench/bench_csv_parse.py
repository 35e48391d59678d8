"""Time `read_submission` against plain pandas.read_csv + per-row str.split parsers, same file, same run.

    python bench/bench_csv_parse.py [--csv FILE] [--gt TRAIN.json] [--repeat 5]

Without --csv it generates the competition-scale case (bench/make_competition_scale.py) into
bench/data/competition first. Prints the best-of-N time of each parser and the ratios, and
`load_coco` (validated) against pycocotools' `COCO(path)` (json.load + index, no checks).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pycocotools.coco import COCO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.dataset import load_coco  # noqa: E402
from core.submission import read_submission  # noqa: E402


def parse_per_box(path: Path):
    """The usual notebook parser: read_csv, then split each row and convert box by box."""
    df = pd.read_csv(path)
    labels, scores, boxes, image_ids = [], [], [], []
    for string, image_id in zip(df["PredictionString"], df["image_id"]):
        if not isinstance(string, str):
            continue
        tokens = string.split()
        for i in range(0, len(tokens), 6):
            labels.append(int(tokens[i]))
            scores.append(float(tokens[i + 1]))
            boxes.append([float(t) for t in tokens[i + 2:i + 6]])
            image_ids.append(image_id)
    return np.array(labels), np.array(scores), np.array(boxes).reshape(-1, 4)


def parse_per_row_numpy(path: Path):
    """A tidier peer: read_csv, then one numpy conversion per row."""
    df = pd.read_csv(path)
    rows = [np.array(s.split(), dtype=np.float64).reshape(-1, 6)
            for s in df["PredictionString"] if isinstance(s, str)]
    table = np.concatenate(rows)
    return table[:, 0].astype(np.int64), table[:, 1], table[:, 2:]


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help="submission CSV to parse (default: generated)")
    parser.add_argument("--gt", type=Path, help="COCO json to time load_coco on (default: generated)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    path, gt_path = args.csv, args.gt
    if path is None or gt_path is None:
        out = REPO / "bench" / "data" / "competition"
        if not (out / "submission.csv").exists():
            import make_competition_scale
            make_competition_scale.main(["--out", str(out)])
        path = path or out / "submission.csv"
        gt_path = gt_path or out / "train.json"

    ours_s, preds = best_time(lambda: read_submission(path), args.repeat)
    box_s, (labels, scores, boxes) = best_time(lambda: parse_per_box(path), max(1, args.repeat // 2))
    row_s, (labels2, scores2, boxes2) = best_time(lambda: parse_per_row_numpy(path), args.repeat)
    same = (np.array_equal(preds.labels, labels) and np.array_equal(preds.scores, scores)
            and np.array_equal(preds.boxes_xyxy, boxes) and np.array_equal(preds.boxes_xyxy, boxes2))
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path} ({size_mb:.1f} MB, {len(preds.image_keys)} rows, {len(preds)} boxes, "
          f"{len(preds.problems)} problems)")
    print(f"read_submission (validated, vectorised):  {ours_s * 1000:8.1f} ms")
    print(f"pandas.read_csv + per-box split/float:    {box_s * 1000:8.1f} ms   ratio {box_s / ours_s:5.2f}x")
    print(f"pandas.read_csv + per-row split/np.array: {row_s * 1000:8.1f} ms   ratio {row_s / ours_s:5.2f}x")
    print(f"same boxes as the peers: {same}")

    ours_gt, dataset = best_time(lambda: load_coco(gt_path), args.repeat)
    with contextlib.redirect_stdout(io.StringIO()):   # COCO() prints progress
        coco_s, _ = best_time(lambda: COCO(str(gt_path)), args.repeat)
    print(f"\nground truth: {gt_path} ({len(dataset.images)} images, {len(dataset.annotations)} boxes)")
    print(f"load_coco (validated, tables):            {ours_gt * 1000:8.1f} ms")
    print(f"pycocotools COCO(path) (no checks):       {coco_s * 1000:8.1f} ms   ratio {coco_s / ours_gt:5.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
