"""`python -m core report GT PRED --out report.html`: one self-contained HTML report.

Overview, per-class table, error breakdown and threshold curves, with plotly.js embedded: the
file opens in a browser without DetLens or a network. Exit 1 when nothing could be evaluated
or the output cannot be written.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="write a self-contained HTML report of a submission",
                              description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("gt", type=Path, help="ground truth (COCO json, YOLO or VOC dataset)")
    p.add_argument("pred", type=Path, help="predictions (submission CSV, COCO results json, ...)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--iou", type=float, default=0.5, help="IoU of the per-box outcomes (default 0.5)")
    p.add_argument("--score-threshold", type=float, default=0.05, metavar="T",
                   help="threshold the overview and per-class counts are given at (default 0.05)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.cli.checks import load_ground_truth_or_say, load_predictions_or_say, outputs_writable, print_problems
    from core.evaluation import evaluate
    from core.output_files import write_text_atomic
    from core.report import build_report

    if not 0.0 < args.iou <= 1.0:
        print(f"error: --iou {args.iou} is not in (0, 1]; give e.g. --iou 0.5")
        return 1
    if not 0.0 <= args.score_threshold <= 1.0:
        print(f"error: --score-threshold {args.score_threshold} is not in [0, 1]")
        return 1
    if not outputs_writable(("--out", args.out)):
        return 1
    dataset = load_ground_truth_or_say(args.gt)
    if dataset is None:
        return 1
    if not len(dataset.annotations):
        print(f"{args.gt}: error: the ground truth has no annotations, so there is nothing to report")
        return 1
    preds = load_predictions_or_say(args.pred, dataset)
    if preds is None:
        return 1
    print_problems(preds.problems)
    ev = evaluate(dataset, preds, iou_thr=args.iou)
    text = build_report(ev, gt_name=args.gt.name, pred_name=args.pred.name, score_thr=args.score_threshold)
    try:
        write_text_atomic(args.out, text)
    except OSError as exc:
        print(f"{args.out}: error: cannot write: {exc.strerror or exc}; check the folder")
        return 1
    print(f"wrote {args.out} ({len(text) / 1e6:.1f} MB, self-contained): mAP@0.5 {ev.stats['map50']:.4f}, "
          f"mAP {ev.stats['map']:.4f}")
    return 0
