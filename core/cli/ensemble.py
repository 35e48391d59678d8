"""`python -m core ensemble A.csv B.csv ... --out ENS.csv`: fuse submissions (WBF, NMS, Soft-NMS, NMW).

With --gt the mAP@0.5 of each input and of the ensemble is printed; with --sweep a grid of
methods and parameters is evaluated against --gt, the sorted table printed and the best
variant written to --out. With --apply TEST ... the chosen settings (the sweep's best, or the
options given) are fitted on the inputs and applied to the test files, matched by position, and
the test ensemble is written to --out; --recipe-out saves the settings as a recipe JSON, which
`--recipe R.json` applies again (byte for byte the same CSV).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.checks import print_problems
from core.output_files import OutputError, atomic_output, check_writable, write_text_atomic
from core.problems import Problem, ValidationError, errors_of



def add_parser(subparsers) -> None:
    from core.ensemble import CONF_TYPES, METHODS
    from core.ensemble_sweep import DEFAULT_IOU_THRS, DEFAULT_SIGMAS, DEFAULT_SKIP_BOX_THRS

    p = subparsers.add_parser(
        "ensemble", help="ensemble prediction CSVs (WBF, NMS, Soft-NMS, NMW), optionally sweep settings",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="PREDICTIONS",
                   help="submission CSVs (or COCO results json) to ensemble")
    p.add_argument("--out", type=Path, required=True, help="where to write the ensembled submission CSV")
    p.add_argument("--method", choices=METHODS, default="wbf")
    p.add_argument("--weights", type=float, nargs="+", metavar="W", help="one weight per input (default 1 each)")
    p.add_argument("--iou", type=float, default=0.55, dest="iou_thr", help="IoU threshold (default 0.55)")
    p.add_argument("--skip-thr", type=float, default=0.0, dest="skip_box_thr",
                   help="drop input boxes scoring below this first (default 0)")
    p.add_argument("--conf-type", choices=CONF_TYPES, default="avg", help="WBF: how fused boxes are scored")
    p.add_argument("--sigma", type=float, default=0.5, help="Soft-NMS gaussian sigma (default 0.5)")
    p.add_argument("--gt", type=Path, help="COCO ground truth: print mAP@0.5 of inputs and ensemble; image sizes")
    p.add_argument("--dataset", type=Path, help="COCO json used only for image sizes (e.g. test.json)")
    p.add_argument("--images", type=Path, help="image folder to read sizes of images the json lacks")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"),
                   help="size of images whose size is known from nowhere else (e.g. 1024 1024)")
    p.add_argument("--sweep", action="store_true", help="evaluate a grid of variants against --gt; write the best")
    p.add_argument("--sweep-methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="M",
                   help="sweep: methods (default all; the default grid has 25 variants)")
    p.add_argument("--sweep-iou", nargs="+", type=float, default=list(DEFAULT_IOU_THRS), metavar="T",
                   help=f"sweep: IoU thresholds (default {' '.join(map(str, DEFAULT_IOU_THRS))})")
    p.add_argument("--sweep-conf-types", nargs="+", choices=CONF_TYPES, default=list(CONF_TYPES), metavar="C",
                   help="sweep: WBF conf types (default all)")
    p.add_argument("--sweep-skip", nargs="+", type=float, default=list(DEFAULT_SKIP_BOX_THRS), metavar="T",
                   help="sweep: skip-box thresholds (default 0)")
    p.add_argument("--sweep-sigma", nargs="+", type=float, default=list(DEFAULT_SIGMAS), metavar="S",
                   help="sweep: Soft-NMS sigmas (default 0.5)")
    p.add_argument("--sweep-table", type=Path, help="also write the full sweep table as CSV here")
    p.add_argument("--workers", type=int, help="worker processes (default: by input size and CPU count)")
    p.add_argument("--apply", type=Path, nargs="+", metavar="TEST",
                   help="fit on the inputs (validation, with --gt), then ensemble these test files (same "
                        "models, same order) with the chosen settings and write them to --out")
    p.add_argument("--recipe", type=Path, help="ensemble the inputs with the settings of this recipe JSON")
    p.add_argument("--recipe-out", type=Path, help="write the settings used as a recipe JSON here")
    p.set_defaults(run=run)


class _UsageError(Exception):
    """A problem with the command line or an input file, already worded for the user."""


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # invalid parameter values, worded by EnsembleConfig
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args) -> int:
    from core.ensemble import EnsembleConfig, ensemble_predictions

    _check_args(args)
    if args.recipe is not None:
        return _run_recipe(args)
    config = EnsembleConfig(args.method, iou_thr=args.iou_thr, skip_box_thr=args.skip_box_thr,
                            conf_type=args.conf_type, sigma=args.sigma,
                            weights=tuple(args.weights) if args.weights else None)
    gt = _load_json(args.gt) if args.gt else None
    size_source = gt if gt is not None else (_load_json(args.dataset) if args.dataset else None)
    inputs = [_load_input(path, size_source) for path in args.inputs]
    names = _display_names(args.inputs)
    size_options = dict(dataset=size_source, image_root=args.images,
                        default_size=tuple(args.image_size) if args.image_size else None)

    if args.sweep:
        result, table = _sweep(args, inputs, names, gt, size_options)
    else:
        with _progress_bar(config.label) as progress:
            result = ensemble_predictions(inputs, config, progress=progress, workers=args.workers,
                                          name=args.out.name, **size_options)
        _print_problems(result.problems)
        print(f"{config.label}: {len(result.predictions)} boxes on {len(result.predictions.image_keys)} "
              f"images in {result.seconds:.1f} s")
        if gt is not None:
            _print_scores(gt, inputs, names, result.predictions, args.out.name)
    recipe = _recipe_of(args, result, names, gt)
    if args.apply:
        result = _apply(args, recipe)
    _write_outputs(args, result, recipe)
    return 0


def _write_outputs(args, result, recipe) -> None:
    from core.submission import write_submission

    try:
        with atomic_output(args.out) as handle:
            write_submission(result.predictions, handle)
    except OSError as exc:
        raise _UsageError(f"--out {args.out}: cannot write: {exc.strerror or exc}; give a writable file path") from None
    print(f"wrote {args.out}")
    if args.recipe_out is not None:
        try:
            write_text_atomic(args.recipe_out, recipe.to_json())
        except OSError as exc:
            raise _UsageError(f"--recipe-out {args.recipe_out}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote the recipe to {args.recipe_out}")


def _recipe_of(args, result, names, gt):
    from core.evaluation import evaluate
    from core.recipe import Recipe

    map50 = None
    if gt is not None and (args.apply or args.recipe_out):
        map50 = float(evaluate(gt, result.predictions).stats["map50"])
    return Recipe.of(result.config, names, fitted_on=args.gt.name if args.gt else "", map50=map50)


def _size_options_for_test(args) -> dict:
    dataset = _load_json(args.dataset) if args.dataset else None
    return dict(dataset=dataset, image_root=args.images,
                default_size=tuple(args.image_size) if args.image_size else None)


def _apply(args, recipe):
    """Ensemble the --apply (test) files with the recipe, inputs matched by position."""
    from core.recipe import apply_recipe

    options = _size_options_for_test(args)
    tests = [_load_input(path, options["dataset"]) for path in args.apply]
    test_names = _display_names(args.apply)
    for fitted, given, weight in recipe.pairing(test_names):
        print(f"  {given} plays {fitted} (weight {weight:g})")
    with _progress_bar(f"apply {recipe.config.label}") as progress:
        result = apply_recipe(recipe, tests, names=test_names, progress=progress, workers=args.workers,
                              name=args.out.name, **options)
    _print_problems(result.problems)
    print(f"applied {recipe.describe()}: {len(result.predictions)} boxes on "
          f"{len(result.predictions.image_keys)} test images in {result.seconds:.1f} s")
    return result


def _run_recipe(args) -> int:
    """`ensemble TEST_A TEST_B --recipe R.json --out FINAL.csv`."""
    from core.recipe import Recipe

    try:
        recipe = Recipe.from_json(args.recipe.read_bytes(), name=str(args.recipe))
    except OSError as exc:
        raise _UsageError(f"--recipe {args.recipe}: cannot read: {exc.strerror or exc}") from None
    args.apply = args.inputs
    if args.dataset is None:  # `--gt test.json` names the images too
        args.dataset = args.gt
    result = _apply(args, recipe)
    _write_outputs(args, result, recipe)
    return 0


def _check_args(args) -> None:
    folders = [str(p) for p in args.inputs if p.is_dir()]
    if folders:
        raise _UsageError(f"input(s) are folders, not prediction files: {', '.join(folders)}; "
                          "give the CSV / results json files in them")
    missing = [str(p) for p in args.inputs if not p.is_file()]
    if missing:
        raise _UsageError(f"input file(s) not found: {', '.join(missing)}")
    _check_recipe_args(args)
    for option, path in (("--out", args.out), ("--sweep-table", args.sweep_table), ("--recipe-out", args.recipe_out)):
        if path is not None:
            try:  # now, not after the ensemble has run
                check_writable(path, option)
            except OutputError as exc:
                raise _UsageError(str(exc)) from None
    if args.weights and len(args.weights) != len(args.inputs):
        raise _UsageError(f"--weights gives {len(args.weights)} weight(s) for {len(args.inputs)} input(s); "
                          "give one per input, in the same order")
    if args.sweep and args.gt is None:
        raise _UsageError("--sweep needs --gt: each variant is scored against the ground truth")
    for name in ("gt", "dataset", "images"):
        path = getattr(args, name)
        if path is not None and not path.exists():
            raise _UsageError(f"--{name} {path}: not found")
    resolved = {p.resolve() for p in args.inputs}
    if args.out.resolve() in resolved:
        raise _UsageError(f"--out {args.out} is one of the inputs; write the ensemble to a new file")
    if args.workers is not None and args.workers < 1:
        raise _UsageError("--workers must be at least 1")


def _check_recipe_args(args) -> None:
    if args.recipe is not None:
        if not args.recipe.is_file():
            raise _UsageError(f"--recipe {args.recipe}: not found")
        if args.sweep or args.apply:
            raise _UsageError("--recipe gives the settings: use it without --sweep or --apply "
                              "(python -m core ensemble TEST_A TEST_B --recipe R.json --out FINAL.csv)")
        if args.weights:
            raise _UsageError("--weights: the recipe has its own weights; edit the recipe instead")
    if args.apply:
        missing = [str(p) for p in args.apply if not p.is_file()]
        if missing:
            raise _UsageError(f"--apply file(s) not found: {', '.join(missing)}")
        if len(args.apply) != len(args.inputs):
            raise _UsageError(f"--apply gives {len(args.apply)} test file(s) for {len(args.inputs)} validation "
                              "input(s); give one test file per input, same models in the same order")
        if args.gt is None:
            raise _UsageError("--apply needs --gt (the validation ground truth the settings are fitted on)")
        if args.out.resolve() in {p.resolve() for p in args.apply}:
            raise _UsageError(f"--out {args.out} is one of the --apply files; write the ensemble to a new file")


def _load_json(path: Path):
    from core.dataset import load_coco

    try:
        dataset = load_coco(path)
    except ValidationError as exc:
        _print_problems(exc.problems)
        raise _UsageError(f"{path}: not a usable COCO json (problems listed above); fix it or give another") from None
    _print_problems(dataset.problems)
    return dataset


def _load_input(path: Path, dataset):
    from core.prediction_files import load_predictions

    preds = load_predictions(path, dataset=dataset)
    errors = errors_of(preds.problems)
    if errors:
        _print_problems(errors)
        raise _UsageError(f"{path}: {len(errors)} bad row(s) (listed above); fix the file before ensembling, "
                          "since its boxes there would be silently missing from the ensemble")
    _print_problems(preds.problems)
    return preds


def _display_names(paths: list[Path]) -> list[str]:
    """File names, or the paths where two inputs share a file name."""
    names = [p.name for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def _print_problems(problems: list[Problem]) -> None:
    print_problems(problems, stream=sys.stderr)


class _progress_bar:
    """tqdm bar on stderr fed by the ensemble's (done, total) progress callback."""

    def __init__(self, desc: str, unit: str = "img"):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def __enter__(self):
        return self

    def __call__(self, done: int, total: int, *label) -> None:
        self.bar.total = total
        if label:
            self.bar.set_postfix_str(label[0])
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc):
        self.bar.close()


def _print_scores(gt, inputs, names, ensembled, out_name: str) -> None:
    from core.evaluation import evaluate

    print(f"{'predictions':<40} {'mAP@0.5':>8} {'mAP':>8}")
    for name, preds in [*zip(names, inputs), (f"ensemble -> {out_name}", ensembled)]:
        stats = evaluate(gt, preds).stats
        print(f"{name:<40} {stats['map50']:>8.4f} {stats['map']:>8.4f}")


def _sweep(args, inputs, names, gt, size_options):
    from core.ensemble_sweep import run_sweep, sweep_grid

    configs = sweep_grid(args.sweep_methods, args.sweep_iou, args.sweep_conf_types, args.sweep_skip,
                         args.sweep_sigma, weights=args.weights)
    with _progress_bar("sweep", unit="variant") as progress:
        sweep = run_sweep(inputs, gt, configs, names=names, progress=progress, workers=args.workers,
                          image_root=size_options["image_root"], default_size=size_options["default_size"])
    _print_problems(sweep.problems)
    table = sweep.table
    columns = ["variant", "map50", "map", "delta_map50", "n_boxes", "seconds"]
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    target = "applied to the --apply files" if args.apply else f"written to {args.out}"
    print(f"best: {sweep.best.label} (mAP@0.5 {table.loc[table['method'] != 'input', 'map50'].max():.4f}); "
          f"{target}")
    if args.sweep_table:
        try:
            with atomic_output(args.sweep_table) as handle:
                table.to_csv(handle, index=False)
        except OSError as exc:
            raise _UsageError(f"--sweep-table {args.sweep_table}: cannot write: {exc.strerror or exc}") from None
        print(f"wrote the sweep table to {args.sweep_table}")
    return sweep.best_result, table
