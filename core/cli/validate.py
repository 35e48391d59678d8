"""`python -m core validate PRED [--gt GT.json]`: check a submission CSV or COCO results json.

Prints every problem (file:line, image_id, what is wrong, what to do) and a summary line.
An error is something the competition server may reject: a box that DetLens still scores as
pycocotools would (score outside [0, 1], xmax <= xmin, an unknown label) or content that
cannot be read and is left out (a value that is not a number, a row that cannot be cut into
boxes). A warning is fine to submit (an image_id on two rows, a box reaching outside its image).
Exit 0: valid (warnings allowed); 1: errors in PRED or GT, or a file cannot be read.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.checks import print_problems
from core.problems import Problem, ValidationError, errors_of, warnings_of


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="check a submission CSV or COCO results json (and a COCO ground truth)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("pred", type=Path, help="submission CSV (PredictionString,image_id), COCO results json, "
                   "Ultralytics predictions.json or YOLO txt folder")
    p.add_argument("--gt", type=Path, help="ground truth (COCO json, YOLO, VOC): checks labels, image_ids against it "
                   "(required for a results json, which names images by id)")
    p.set_defaults(run=run)


def _print_problems(problems: list[Problem]) -> None:
    print_problems(problems, limit=None)  # validate's job is the whole list


def run(args: argparse.Namespace) -> int:
    from core.formats import (PRED_COCO, PRED_ULTRALYTICS, PRED_YOLO, detect_predictions_format,
                              load_any_predictions, load_ground_truth)

    dataset = None
    if args.gt is not None:
        try:
            dataset = load_ground_truth(args.gt)
        except ValidationError as exc:
            _print_problems(exc.problems)
            print(f"ground truth {args.gt}: {len(errors_of(exc.problems))} error(s); fix it or give "
                  "another --gt. INVALID")
            return 1
        _print_problems(dataset.problems)

    try:
        data = args.pred if args.pred.is_dir() else args.pred.read_bytes()  # a YOLO txt folder, or a file
    except OSError as exc:
        print(f"{args.pred}: error: cannot read the file: {exc.strerror or exc}; check the path")
        return 1
    try:
        kind = detect_predictions_format(args.pred)
        preds = load_any_predictions(data, dataset, name=args.pred.name)
        is_json = kind in (PRED_COCO, PRED_ULTRALYTICS)
    except ValidationError as exc:
        _print_problems(exc.problems)
        print(f"{args.pred}: not usable as predictions. INVALID")
        return 1

    _print_problems(preds.problems)
    errors, warnings = errors_of(preds.problems), warnings_of(preds.problems)
    gt_part = ""
    if dataset is not None:
        known = int((dataset.image_index_of_file(preds.image_keys) >= 0).sum())
        gt_part = f", {known} of {len(dataset.images)} GT images covered"
    verdict = "VALID" if not errors else "INVALID: the competition server may reject it"
    what = {PRED_COCO: "COCO results json", PRED_ULTRALYTICS: "Ultralytics predictions.json",
            PRED_YOLO: "YOLO txt folder"}.get(kind, "submission CSV")
    print(f"{args.pred.name}: {what}: "
          f"{len(preds)} {'entries' if is_json else 'boxes'} loaded, {len(preds.image_keys)} images{gt_part}; "
          f"{len(errors)} error(s), {len(warnings)} warning(s). {verdict}")
    return 0 if not errors else 1
