"""`python -m core agree REF.csv OTHER.csv [...]`: agreement of submissions without ground truth.

REF's boxes scoring >= --ref-threshold become a COCO ground truth; each OTHER is evaluated
against it as against a real one: AP@0.5 per class ("agreement"), boxes only in REF, only in
OTHER, class disagreements, and the images where they disagree most.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from core.output_files import OutputError, check_writable, write_text_atomic
from core.problems import ValidationError, errors_of

N_IMAGES = 20  # images listed per comparison


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "agree", help="agreement of prediction sets against a reference's confident boxes (no GT needed)",
        description=__doc__.split("\n\n")[0])
    p.add_argument("ref", type=Path, metavar="REF", help="reference submission CSV (or COCO results json)")
    p.add_argument("others", type=Path, nargs="+", metavar="OTHER", help="submission(s) compared with REF")
    p.add_argument("--gt", type=Path, help="COCO json (e.g. test.json) for image sizes and class names; "
                                          "without it, class ids are used")
    p.add_argument("--ref-threshold", type=float, default=0.5, dest="ref_thr",
                   help="REF's boxes scoring >= this are the pseudo ground truth (default 0.5)")
    p.add_argument("--json", type=Path, dest="json_out", help="write the report as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValidationError, ValueError, _UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


class _UsageError(Exception):
    """A problem with the command line or an input, already worded for the user."""


def _run(args) -> int:
    from core.agreement import agreement
    from core.dataset import load_coco
    from core.prediction_files import load_predictions

    if not 0.0 <= args.ref_thr <= 1.0:
        raise _UsageError(f"--ref-threshold {args.ref_thr} is outside [0, 1]; give e.g. 0.5")
    for path in [args.ref, *args.others, *([args.gt] if args.gt else [])]:
        if not path.is_file():
            raise _UsageError(f"{path}: not found (or not a file)")
    if args.json_out is not None:
        try:
            check_writable(args.json_out, "--json")
        except OutputError as exc:
            raise _UsageError(str(exc)) from None
    dataset = load_coco(args.gt) if args.gt else None
    ref = _load(args.ref, dataset, load_predictions)
    report = {"ref": str(args.ref), "ref_threshold": args.ref_thr, "comparisons": []}
    for path in args.others:
        other = _load(path, dataset, load_predictions)
        if not set(other.image_keys.tolist()) & set(ref.image_keys.tolist()):
            raise _UsageError(f"{path} and {args.ref} share no image_id: not submissions for the same images")
        ag = agreement(ref, other, ref_thr=args.ref_thr, dataset=dataset,
                       ref_name=args.ref.name, other_name=path.name)
        for problem in ag.pseudo_gt.problems + ag.evaluation.problems:
            print(problem, file=sys.stderr)
        _print(ag)
        report["comparisons"].append(_entry(path, ag))
    if args.json_out is not None:
        try:
            write_text_atomic(args.json_out, json.dumps(report, indent=1, allow_nan=False))
        except OSError as exc:
            raise _UsageError(f"--json {args.json_out}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote {args.json_out}")
    return 0


def _load(path: Path, dataset, load_predictions):
    preds = load_predictions(path, dataset=dataset)
    for problem in preds.problems[:20]:
        print(problem, file=sys.stderr)
    if not len(preds) and errors_of(preds.problems):
        raise _UsageError(f"{path}: no box could be read (problems listed above)")
    return preds


def _number(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _entry(path: Path, ag) -> dict:
    per_class = ag.per_class
    images = ag.per_image.head(N_IMAGES)
    return {
        "other": str(path), "agreement": _number(ag.map50), "other_threshold": ag.other_thr,
        "per_class": [{k: _number(v) for k, v in row.items()} for row in per_class.to_dict("records")],
        "images": [{k: _number(v) for k, v in row.items() if k != "image_index"}
                   for row in images.to_dict("records")],
    }


def _print(ag) -> None:
    print(f"\n{ag.other_name} against {ag.ref_name} (boxes >= {ag.ref_thr:g} as ground truth: "
          f"{len(ag.pseudo_gt.annotations):,} boxes)")
    print(f"agreement (mAP@0.5): {ag.map50:.4f}; counts at score >= {ag.other_thr:g}")
    table = ag.per_class.rename(columns={"agreement": "AP50", "ref_boxes": "ref", "other_boxes": "other",
                                         "only_ref": "only ref", "only_other": "only other",
                                         "class_disagreements": "class diff"}).drop(columns=["category_id"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    images = ag.per_image.head(N_IMAGES)
    print(f"\nthe {len(images)} images where they disagree most:")
    print(images.drop(columns=["image_index"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
