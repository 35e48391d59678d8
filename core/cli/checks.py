"""What every command does around its work, said the same way: outputs checked before the work,
inputs loaded with one message when unusable, problems listed with a cap."""
from __future__ import annotations

import sys
from pathlib import Path

from core.output_files import OutputError, check_writable
from core.problems import Problem, ValidationError

MAX_PROBLEMS_SHOWN = 20


def print_problems(problems: list[Problem], *, limit: int | None = MAX_PROBLEMS_SHOWN, stream=None) -> None:
    """Each problem on its own line, the first `limit` of them (None: all), then how many more."""
    stream = stream or sys.stdout
    shown = problems if limit is None else problems[:limit]
    for problem in shown:
        print(problem, file=stream)
    if len(problems) > len(shown):
        print(f"... and {len(problems) - len(shown)} more problem(s); `python -m core validate` lists "
              "them all", file=stream)


def outputs_writable(*outputs: tuple[str, Path | None]) -> bool:
    """Whether every (option, path) given can be written; else says why (first failure) and False."""
    for option, path in outputs:
        if path is None:
            continue
        try:
            check_writable(path, option)
        except OutputError as exc:
            print(f"error: {exc}")
            return False
    return True


def load_ground_truth_or_say(path: Path):
    """The ground truth at `path` (COCO json, YOLO or VOC, from content and layout), or None
    after its problems and what to do were printed."""
    from core.formats import load_ground_truth

    try:
        return load_ground_truth(path)
    except ValidationError as exc:
        _say_unusable("ground truth", path, exc)
        return None


def load_predictions_or_say(path: Path, dataset):
    """The predictions at `path` in any format DetLens reads, or None after saying why not."""
    from core.formats import load_any_predictions

    try:
        return load_any_predictions(path, dataset)
    except ValidationError as exc:
        _say_unusable("predictions", path, exc)
        return None


def load_inputs_or_say(gt_path: Path, pred_path: Path, ready=lambda dataset: True):
    """(dataset, predictions) from core.prediction_files.load_inputs (the ground truth loads
    beside the CSV's parse), or None after saying why not, in this order: the ground truth's
    problems, ready(dataset) (False: it said why the dataset will not do), the predictions'."""
    from core.prediction_files import UnusableInput, load_inputs

    try:
        return load_inputs(gt_path, pred_path, ready=ready)
    except UnusableInput as exc:
        _say_unusable(exc.role, exc.path, exc.error)
        return None


# what an input refused is said to be, by its role (the role of a core.prediction_files.UnusableInput)
_UNUSABLE_AS = {"ground truth": "not a usable ground truth", "predictions": "not usable as predictions"}


def _say_unusable(role: str, path, error: ValidationError) -> None:
    """An input's problems, then that it cannot be used and what to do."""
    print_problems(error.problems)
    print(f"{path}: {_UNUSABLE_AS[role]}; fix the errors above.")
