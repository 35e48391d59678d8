"""`python -m core label-issues GT PRED [--out SUSPECTS.csv] [--json OUT.json] [--top N]`.

Ranks suspected ground-truth errors (missing annotations, wrong classes, bad boxes, duplicate
boxes) where the predictions disagree with the labels: DetLens' rules on the per-box outcomes
blended with cleanlab's ObjectLab box scores (core.label_issues). Prints the counts by kind and
the top of the table; --out writes the ranked suspects as CSV (rank, kind, image_id, ann_id,
category_id, suggested_category_id, x1, y1, x2, y2, score, then the evidence), --json the same
as a json list. x1..y2 is the box after the suggested fix (the GT box for a relabel or a
delete); a missing box has ann_id and category_id -1. Use out-of-fold predictions: a model that saw the labels repeats their errors. Exit 1
when nothing could be checked (an unusable file, a ground truth without annotations,
predictions for other images) or an output cannot be written.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from core.cli.checks import load_ground_truth_or_say, load_predictions_or_say, outputs_writable
from core.output_files import atomic_output, write_text_atomic

CSV_COLUMNS = ["rank", "kind", "image_id", "ann_id", "category_id", "suggested_category_id",
               "x1", "y1", "x2", "y2", "score", "file_name", "fix", "other_ann_id", "model_category_id",
               "model_score", "model_x1", "model_y1", "model_x2", "model_y2", "iou",
               "detlens_score", "cleanlab_score", "suspect_id"]
SHOWN = 20


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "label-issues", help="rank suspected ground-truth errors (missing, wrong class, bad box, duplicate)",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("gt", type=Path, help="COCO ground-truth json (or a YOLO / VOC dataset folder)")
    p.add_argument("pred", type=Path, help="predictions on its images (submission CSV, COCO results json, ...)")
    p.add_argument("--out", type=Path, default=None, metavar="SUSPECTS.csv", help="write the ranked suspects")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json", help="write them as a json list")
    p.add_argument("--top", type=int, default=None, metavar="N", help="keep the N most suspicious")
    p.add_argument("--no-cleanlab", action="store_true", help="rank by DetLens' rules alone")
    p.set_defaults(run=run)


def suspects_table(suspects):
    """The CSV's columns: x1..y2 = the box after the fix (the GT box for a relabel or delete)."""
    table = suspects.copy()
    for c in ("x1", "y1", "x2", "y2"):
        table[c] = table[f"fix_{c}"].where(table[f"fix_{c}"].notna(), table[f"gt_{c}"])
    return table[CSV_COLUMNS]


def run(args: argparse.Namespace) -> int:
    from core.label_issues import LabelIssuesError, find_label_issues

    if args.top is not None and args.top < 1:
        print(f"error: --top {args.top}: give a positive number of suspects, e.g. --top 100")
        return 1
    if not outputs_writable(("--out", args.out), ("--json", args.json)):  # before the work
        return 1
    dataset = load_ground_truth_or_say(args.gt)
    if dataset is None:
        return 1
    preds = load_predictions_or_say(args.pred, dataset)
    if preds is None:
        return 1
    try:
        issues = find_label_issues(dataset, preds, use_cleanlab=not args.no_cleanlab)
    except LabelIssuesError as exc:
        print(f"error: {exc}")
        return 1
    for problem in issues.problems:
        print(problem)
    table = suspects_table(issues.suspects)
    if args.top is not None:
        table = table.head(args.top)
    counts = issues.counts()
    print(f"{len(issues.suspects)} suspect(s) on {issues.n_images_checked} image(s) with predictions: "
          + ", ".join(f"{k} {n}" for k, n in counts.items())
          + ("" if issues.cleanlab_used else " (DetLens' rules alone)"))
    _print_top(table.head(SHOWN), dataset)
    status = 0
    try:
        if args.out is not None:
            with atomic_output(args.out) as handle:
                table.to_csv(handle, index=False, float_format="%.4f")
            print(f"wrote {len(table)} suspect(s) to {args.out}")
        if args.json is not None:
            records = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict(orient="records")]
            write_text_atomic(args.json, json.dumps(records, indent=1))
            print(f"wrote {len(table)} suspect(s) to {args.json}")
    except OSError as exc:
        print(f"error: cannot write: {exc.strerror or exc}; check the folder")
        status = 1
    return status


def _plain(value):
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _print_top(table, dataset) -> None:
    names = dataset.category_names
    if not len(table):
        return
    print(f"\n{'rank':>4}  {'kind':<11}  {'image':<16} {'ann':>6}  {'class':<14} {'-> suggested':<16} "
          f"{'model':>6} {'IoU':>5}  {'score':>5}")
    for r in table.itertuples(index=False):
        cls = names.get(int(r.category_id), "-") if r.category_id >= 0 else "-"
        new = names.get(int(r.suggested_category_id), str(r.suggested_category_id))
        model = f"{r.model_score:.2f}" if not math.isnan(r.model_score) else "-"
        print(f"{r.rank:>4}  {r.kind:<11}  {str(r.file_name)[:16]:<16} {r.ann_id:>6}  {cls[:14]:<14} "
              f"{'-> ' + (new if r.fix != 'delete' else 'delete'):<16} {model:>6} {r.iou:>5.2f}  {r.score:>5.3f}")
