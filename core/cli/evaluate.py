"""`python -m core evaluate GT.json PRED [--iou 0.5] [--score-threshold T] [--json OUT.json]`.

Prints the twelve COCO stats (pycocotools' layout), a per-class table (AP50, AP, TP, each
error type, missed) with totals, and TIDE's dAP per error type. PRED is a submission CSV or
a COCO results json, told apart by content. Predictions on images the ground truth lacks
are reported and left out. With --score-threshold, every box scoring below T is deleted
first, so all numbers are those of the cut submission. Problems in PRED are printed first;
every box pycocotools would score is scored as it scores it (also boxes the competition
server may reject), and only what cannot be read is left out. Exit 0: the numbers were
computed (warnings and errors may have been printed); 1: nothing could be computed (a file is
unusable, the ground truth has no annotations, a threshold is out of range) or --json cannot
be written.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from core.cli.checks import load_inputs_or_say, outputs_writable, print_problems
from core.output_files import write_text_atomic
from core.problems import ValidationError, errors_of
# pycocotools' summarize lines, in STAT_NAMES order
_SUMMARY = [
    ("Average Precision", "(AP)", "0.50:0.95", "all", 100), ("Average Precision", "(AP)", "0.50", "all", 100),
    ("Average Precision", "(AP)", "0.75", "all", 100), ("Average Precision", "(AP)", "0.50:0.95", "small", 100),
    ("Average Precision", "(AP)", "0.50:0.95", "medium", 100), ("Average Precision", "(AP)", "0.50:0.95", "large", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 1), ("Average Recall", "(AR)", "0.50:0.95", "all", 10),
    ("Average Recall", "(AR)", "0.50:0.95", "all", 100), ("Average Recall", "(AR)", "0.50:0.95", "small", 100),
    ("Average Recall", "(AR)", "0.50:0.95", "medium", 100), ("Average Recall", "(AR)", "0.50:0.95", "large", 100),
]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="COCO metrics, per-class errors and TIDE dAP of a submission",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("gt", type=Path, help="ground truth: COCO json, YOLO data.yaml or folder, Pascal VOC folder")
    p.add_argument("pred", type=Path, help="submission CSV (PredictionString,image_id), COCO results json, "
                   "Ultralytics predictions.json or YOLO txt folder")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the per-box outcomes (default 0.5)")
    p.add_argument("--score-threshold", type=float, default=None, metavar="T",
                   help="delete every box scoring below T first")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="also write the results as json")
    p.add_argument("--calibration-bins", type=int, default=10, metavar="N",
                   help="--json calibration: N equal-width score bins (default 10)")
    p.add_argument("--calibration-iou", type=float, default=None, metavar="IOU",
                   help="--json calibration: IoU that makes a box correct (default: --iou)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate

    if not 0.0 < args.iou <= 1.0:
        print(f"error: --iou {args.iou} is not in (0, 1]; give e.g. --iou 0.5")
        return 1
    if args.score_threshold is not None and not 0.0 <= args.score_threshold <= 1.0:
        print(f"error: --score-threshold {args.score_threshold} is not in [0, 1]; give e.g. --score-threshold 0.05")
        return 1
    cal_iou = getattr(args, "calibration_iou", None)
    if getattr(args, "calibration_bins", 10) < 1 or (cal_iou is not None and not 0.0 < cal_iou <= 1.0):
        print("error: --calibration-bins must be a positive integer and --calibration-iou in (0, 1]; "
              "give e.g. --calibration-bins 10 --calibration-iou 0.5")
        return 1
    if not outputs_writable(("--json", args.json)):  # before the evaluation, not after it
        return 1
    def has_annotations(dataset) -> bool:
        if len(dataset.annotations):
            return True
        print(f"{args.gt}: error: the ground truth has no annotations (a test split?), so every metric is "
              "undefined; give a json with boxes, e.g. train.json or a validation fold")
        return False

    loaded = load_inputs_or_say(args.gt, args.pred, ready=has_annotations)
    if loaded is None:
        return 1
    dataset, preds = loaded
    print_problems(dataset.problems + preds.problems)
    if args.score_threshold is not None:
        from core.thresholds import PredictionView

        view = PredictionView(preds, args.score_threshold)
        print(f"score threshold {args.score_threshold:g}: {len(preds) - view.n_kept} of {len(preds)} boxes deleted")
        preds = view.kept
    with _scipy_hidden():
        ev = evaluate(dataset, preds, iou_thr=args.iou)
    for problem in ev.problems:
        print(problem)
    _print_report(ev)
    status = 0
    if args.json is not None:
        try:
            from core.analysis_json import analysis_json
            analysis = analysis_json(ev, preds, n_bins=getattr(args, "calibration_bins", 10),
                                     calibration_iou=getattr(args, "calibration_iou", None),
                                     gt_doc=_gt_document(args.gt))
            write_text_atomic(args.json, json.dumps({**_as_json(ev, args), **analysis}, indent=1, allow_nan=False))
        except OSError as exc:
            print(f"{args.json}: error: cannot write: {exc.strerror or exc}; check the folder")
            status = 1
    bad = errors_of(preds.problems)
    if bad:
        print(f"{args.pred}: the error(s) listed above mean the competition server may reject this file; the "
              "numbers above score it as pycocotools would (only what cannot be read is left out).")
    return status


@contextlib.contextmanager
def _scipy_hidden():
    """Hide scipy while numba starts: its first compile imports scipy.linalg (~0.3 s) for BLAS
    support our kernels never use. Only here: a command runs one thread, so nothing else can
    be importing scipy meanwhile (the dashboard's sessions could)."""
    if "scipy" in sys.modules:
        yield
        return
    sys.modules["scipy"] = None  # makes `import scipy...` raise ImportError, which numba allows
    try:
        yield
    finally:
        del sys.modules["scipy"]


def _print_report(ev) -> None:
    from core.outcomes import PREDICTION_ERRORS

    for (title, kind, iou, area, max_dets), value in zip(_SUMMARY, ev.stats.values()):
        print(f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {value:0.3f}")
    view = ev.at(-math.inf)
    table = view.per_class.merge(ev.per_class[["category_id", "ap"]], on="category_id")
    errors = [e.value for e in PREDICTION_ERRORS]
    heads = ["AP50", "AP", "TP"] + [e.short_name for e in PREDICTION_ERRORS] + ["Missed"]
    width = max([len("class"), len("total")] + [len(str(n)) for n in table["name"]])
    iou_name = f"AP{round(ev.iou_thr * 100)}"
    heads[0] = iou_name
    print()
    print(f"{'class':<{width}}  " + "  ".join(f"{h:>7}" for h in heads))
    for row in table.itertuples(index=False):
        values = [_fmt(row.ap50), _fmt(row.ap), row.tp] + [getattr(row, e) for e in errors] + [row.missed]
        print(f"{str(row.name):<{width}}  " + "  ".join(f"{v:>7}" for v in values))
    totals = [_fmt(view.map50), _fmt(ev.stats["map"]), view.counts["tp"]] + \
        [view.counts[e] for e in errors] + [view.counts["missed"]]
    print(f"{'total':<{width}}  " + "  ".join(f"{v:>7}" for v in totals))
    print(f"precision {view.precision:.3f}  recall {view.recall:.3f}  F1 {view.f1:.3f}  "
          f"(IoU {ev.iou_thr:g}; {view.counts['ignored']} box(es) ignored as COCO does)")
    tide = ev.tide
    print(f"TIDE dAP@{ev.iou_thr:g} (mAP gained by fixing each error type): " + "  ".join(
        f"{short} {dap:.4f}" for short, dap in zip([_short(e) for e in tide["error"]], tide["dap"])))
    if len(ev.unknown_image_keys):
        print(f"{len(ev.unknown_image_keys)} prediction image(s) not in the ground truth, left out: "
              + ", ".join(map(str, ev.unknown_image_keys[:5])) + (" ..." if len(ev.unknown_image_keys) > 5 else ""))


def _short(value: str) -> str:
    from core.outcomes import Outcome

    return Outcome(value).short_name


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _gt_document(path: Path) -> dict | None:
    """The ground truth as a json dict when it is a json file (its custom fields become slices)."""
    from core.dataset import parse_json

    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        doc = parse_json(path.read_bytes(), path.name)
    except (OSError, ValueError, ValidationError):
        return None
    return doc if isinstance(doc, dict) else None


def _clean(value):
    """json-safe: NaN -> None, numpy scalars -> python."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _as_json(ev, args) -> dict:
    view = ev.at(-math.inf)
    per_class = view.per_class.merge(ev.per_class[["category_id", "ap", "ap75", "n_gt", "n_pred"]], on="category_id")
    return {
        "gt": str(args.gt), "pred": str(args.pred), "iou_thr": ev.iou_thr,
        "score_threshold": args.score_threshold,
        **{name: _clean(value) for name, value in ev.stats.items()},
        "per_class": [{("id" if k == "category_id" else k): _clean(v) for k, v in row.items()}
                      for row in per_class.to_dict("records")],
        "errors": {k: int(v) for k, v in view.counts.items()},
        "precision": _clean(view.precision), "recall": _clean(view.recall), "f1": _clean(view.f1),
        "tide": {"ap_base": _clean(ev.tide_ap_base),
                 "dap": {row.error: _clean(row.dap) for row in ev.tide.itertuples()},
                 "count": {row.error: int(row.count) for row in ev.tide.itertuples()},
                 **{k: _clean(v) for k, v in ev.tide_special.items()}},
        "unknown_image_keys": [str(k) for k in ev.unknown_image_keys],
    }
