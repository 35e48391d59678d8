"""`python -m core infer --checkpoint CKPT --data DIR --out PRED.csv`: run a checkpoint over a split.

Images come from the split's json (DIR/train.json, DIR/test.json, or --gt) or, without one,
from the folder DIR/<split>/. Writes a submission CSV (boxes >= --score-threshold) with a
progress bar; uses the GPU when there is one. Exit 0: every image predicted; 1: otherwise.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.models import architecture_names
from core.output_files import OutputError, atomic_output, check_writable
from core.problems import Problem, Severity, ValidationError, errors_of

MAX_PRINTED = 50  # problems listed before "... and N more"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "infer", help="run a detection checkpoint over a dataset split and write a submission CSV",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="state_dict file (.pt/.pth), bare or under 'model'/'state_dict'/'model_state_dict'")
    p.add_argument("--arch", choices=architecture_names(), metavar="NAME",
                   help="architecture, one of: " + ", ".join(architecture_names())
                   + " (may be left out when the checkpoint records it)")
    p.add_argument("--data", type=Path, required=True, help="dataset folder (train.json, train/, test/ ...)")
    p.add_argument("--split", default="test", help="which images: DATA/<split>.json or DATA/<split>/ (default test)")
    p.add_argument("--gt", type=Path, help="COCO json listing the images (and categories) instead of the split's")
    p.add_argument("--out", type=Path, required=True, help="submission CSV to write")
    p.add_argument("--score-threshold", type=float, default=0.05, help="keep boxes scoring at least this (0.05)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default 4 on GPU, 1 on CPU)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--input-size", type=int, help="shorter-side resize (default: the checkpoint's, else the arch's)")
    p.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"error: {message}")
    return 1


def _images_and_categories(args):
    """(items [(key, path)], categories table or None, dataset or None, problems)."""
    from core.dataset import load_coco
    from core.images import folder_images
    from core.inference import dataset_image_items

    json_path = args.gt or args.data / f"{args.split}.json"
    if json_path.is_file():
        dataset = load_coco(json_path, root=args.data)
        items, problems = dataset_image_items(dataset, limit=args.limit)
        categories = dataset.categories
        if not len(categories):  # an images-only json: take the categories from train.json
            categories = _train_categories(args.data)
        return items, categories, dataset, problems + dataset.problems
    if args.gt is not None:
        raise ValueError(f"{args.gt}: no such file")
    if not (args.data / args.split).exists():
        raise ValueError(f"{args.data}: has neither {args.split}.json nor a {args.split}/ folder; "
                         "check --data and --split, or give --gt")
    # the explorer's rule for file names (core.images): no '..' above --data, symlinks followed
    items, refusals = folder_images(args.data, args.split)
    problems = [Problem(Severity.ERROR, refusal, file=str(args.data)) for refusal in refusals]
    return items[:args.limit], _train_categories(args.data), None, problems


def _train_categories(data: Path):
    from core.dataset import load_coco

    train_json = data / "train.json"
    return load_coco(train_json).categories if train_json.is_file() else None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.inference import (CheckpointError, expected_image_sizes, load_detector, pick_device,
                                predict_images)
    from core.submission import write_submission

    if not 0.0 <= args.score_threshold <= 1.0:
        return _fail(f"--score-threshold {args.score_threshold} is outside [0, 1]")
    for option in ("limit", "batch_size", "input_size"):
        value = getattr(args, option)
        if value is not None and value < 1:
            return _fail(f"--{option.replace('_', '-')} {value}: must be at least 1")
    if not args.data.is_dir():
        return _fail(f"--data {args.data}: no such folder; give the dataset folder (train.json, train/, test/ ...)")
    try:  # now, not after minutes of inference
        check_writable(args.out, "--out")
    except OutputError as exc:
        return _fail(str(exc))
    try:
        items, categories, dataset, problems = _images_and_categories(args)
    except ValidationError as exc:
        for problem in exc.problems:
            print(problem)
        return _fail("the dataset json has errors; fix it or give another --gt")
    except ValueError as exc:
        return _fail(str(exc))
    if not items:
        return _fail(f"no images to predict in {args.data} ({args.split})")

    device = pick_device() if args.device == "auto" else args.device
    if device == "cuda" and pick_device() != "cuda":
        return _fail("--device cuda: no usable CUDA GPU here; use --device cpu (or auto)")
    try:
        detector = load_detector(args.checkpoint, arch=args.arch, categories=categories, device=device,
                                 input_size=args.input_size, score_floor=min(args.score_threshold, 0.01))
    except (CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    for warning in detector.warnings:
        print(f"warning: {warning}")

    batch_size = args.batch_size or (4 if device.startswith("cuda") else 1)
    start = time.perf_counter()
    with tqdm(total=len(items), unit="img", desc=f"{detector.arch} on {device}") as bar:
        preds = predict_images(detector, items, score_thr=args.score_threshold, batch_size=batch_size,
                               progress=lambda done, total: bar.update(done - bar.n), source=args.out.name,
                               expected_sizes=expected_image_sizes(dataset) if dataset is not None else None,
                               upright=dataset is not None and dataset.upright_pixels)
    seconds = time.perf_counter() - start
    problems = problems + preds.problems
    for problem in problems[:MAX_PRINTED]:
        print(problem)
    if len(problems) > MAX_PRINTED:
        print(f"... and {len(problems) - MAX_PRINTED} more problem(s)")

    try:
        with atomic_output(args.out) as handle:
            write_submission(preds, handle)
    except OSError as exc:
        return _fail(f"{args.out}: cannot write: {exc.strerror or exc}; nothing was written there")
    print(f"wrote {args.out}: {len(preds.image_keys)} images, {len(preds)} boxes with score >= "
          f"{args.score_threshold:g}; {seconds:.1f} s ({seconds / max(len(items), 1):.2f} s/image)")
    _print_map(dataset, preds, args.limit)
    failed = errors_of(problems)
    if failed:
        return _fail(f"{len(failed)} image(s) could not be predicted and are missing from {args.out}")
    return 0


def _print_map(dataset, preds, limit) -> None:
    """mAP@0.5 against the json's boxes when it has them and every image was predicted."""
    if dataset is None or not len(dataset.annotations) or limit is not None:
        return
    if len(preds.image_keys) != len(dataset.images):
        return
    from core.evaluation import evaluate

    stats = evaluate(dataset, preds).stats
    print(f"mAP@0.5 on {dataset.source}: {stats['map50']:.4f} (mAP@[.5:.95] {stats['map']:.4f})")

