"""`python -m core convert SRC --to {coco,csv,yolo,voc,ultralytics} --out DST [--gt GT]`.

SRC is a ground truth (COCO json, YOLO data.yaml or folder, VOC folder) or predictions
(submission CSV, COCO results json, Ultralytics predictions.json, YOLO txt folder), recognised
from content and layout. Ground truth converts to coco / yolo / voc; predictions to csv / coco /
yolo / ultralytics, with --gt naming the ground truth (any of its formats) that gives image
ids, stems and sizes. Folder outputs (yolo, voc) must be new or empty. Outputs are written
whole or not at all. Exit 0: written; 1: SRC or GT unusable, --out refused, or input lines
were bad (they are listed, left out, and the rest is written).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.checks import print_problems
from core.problems import ValidationError, errors_of

TARGETS = ("coco", "csv", "yolo", "voc", "ultralytics")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a ground truth or predictions between COCO, CSV, YOLO, VOC and Ultralytics json",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("src", type=Path, help="ground truth or predictions, any accepted format")
    p.add_argument("--to", required=True, choices=TARGETS, help="output format")
    p.add_argument("--out", required=True, type=Path, help="output file (coco, csv, ultralytics) or new folder "
                   "(yolo, voc)")
    p.add_argument("--gt", type=Path, default=None, help="ground truth of the predictions (COCO json, YOLO, VOC); "
                   "needed for every predictions output but csv")
    p.add_argument("--split", default=None, help="YOLO split (train/val/test/all) or VOC ImageSets/Main name to read")
    p.add_argument("--images", choices=("link", "copy", "none"), default="link",
                   help="ground truth to yolo/voc: symlink (default), copy or leave out the image files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from core.formats import (GT_WRITERS, PRED_WRITERS, is_ground_truth, load_any_predictions,
                              load_ground_truth, write_ground_truth, write_predictions)
    from core.output_files import OutputError

    if not args.src.exists():
        print(f"{args.src}: error: does not exist; check the path")
        return 1
    source_is_gt = is_ground_truth(args.src)
    kind = "ground truth" if source_is_gt else "predictions"
    accepted = GT_WRITERS if source_is_gt else PRED_WRITERS
    if args.to not in accepted:
        print(f"error: {args.src} is {kind}; --to {args.to} is not a {kind} format "
              f"(give one of {', '.join(accepted)})")
        return 1
    try:
        if source_is_gt:
            dataset = load_ground_truth(args.src, split=args.split)
            problems = dataset.problems
            count = f"{len(dataset.images)} images, {len(dataset.annotations)} boxes"
            written = write_ground_truth(dataset, args.to, args.out, images=args.images)
        else:
            dataset = load_ground_truth(args.gt, split=args.split) if args.gt is not None else None
            preds = load_any_predictions(args.src, dataset)
            problems = (dataset.problems if dataset is not None else []) + preds.problems
            count = f"{len(preds.image_keys)} images, {len(preds)} boxes"
            written = write_predictions(preds, args.to, args.out, dataset=dataset)
    except ValidationError as exc:
        print_problems(exc.problems)
        print(f"not converted: fix the error(s) above. ({exc.args[0].splitlines()[0]})")
        return 1
    except (OutputError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    print_problems(problems + written)
    print(f"wrote {args.out} ({args.to}): {count}")
    bad = errors_of(problems)
    if bad:
        print(f"{len(bad)} error(s) in the input: those lines were left out of {args.out} (exit 1).")
        return 1
    return 0

