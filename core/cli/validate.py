"""`python -m core validate PRED [--gt GT.json]`: check a submission CSV or COCO results json.

Prints every problem (file:line, image_id, what is wrong, what to do) and a summary line.
Exit 0: valid (warnings allowed); 1: errors in PRED or GT, or a file cannot be read.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core.problems import Problem, ValidationError, errors_of, warnings_of


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="check a submission CSV or COCO results json (and a COCO ground truth)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("pred", type=Path, help="submission CSV (PredictionString,image_id) or COCO results json")
    p.add_argument("--gt", type=Path, help="COCO ground-truth json: checks labels and image_ids against it "
                   "(required for a results json, which names images by id)")
    p.set_defaults(run=run)


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(problem)


def run(args: argparse.Namespace) -> int:
    from core.dataset import load_coco
    from core.predictions import FORMAT_JSON, detect_format, load_predictions

    dataset = None
    if args.gt is not None:
        try:
            dataset = load_coco(args.gt)
        except ValidationError as exc:
            _print_problems(exc.problems)
            print(f"ground truth {args.gt}: {len(errors_of(exc.problems))} error(s); fix it or give "
                  "another --gt. INVALID")
            return 1
        _print_problems(dataset.problems)

    try:
        data = args.pred.read_bytes()
    except OSError as exc:
        print(f"{args.pred}: error: cannot read the file: {exc.strerror or exc}; check the path")
        return 1
    is_json = detect_format(data) == FORMAT_JSON
    try:
        preds = load_predictions(data, dataset=dataset, name=args.pred.name)
    except ValidationError as exc:
        _print_problems(exc.problems)
        print(f"{args.pred}: not usable as predictions. INVALID")
        return 1

    _print_problems(preds.problems)
    errors, warnings = errors_of(preds.problems), warnings_of(preds.problems)
    left_out = len({p.line for p in errors if p.line is not None}) if not is_json else None
    unit = "entries" if is_json else "rows"
    loaded = len(preds.image_keys) if not is_json else len(preds)
    dropped = f" ({left_out} left out)" if left_out else ""
    gt_part = ""
    if dataset is not None:
        known = int((dataset.image_index_of_file(preds.image_keys) >= 0).sum())
        gt_part = f", {known} of {len(dataset.images)} GT images covered"
    verdict = "VALID" if not errors else "INVALID"
    print(f"{args.pred.name}: {'COCO results json' if is_json else 'submission CSV'}: "
          f"{loaded} {unit} loaded{dropped}, {len(preds)} boxes, {len(preds.image_keys)} images{gt_part}; "
          f"{len(errors)} error(s), {len(warnings)} warning(s). {verdict}")
    return 0 if not errors else 1
