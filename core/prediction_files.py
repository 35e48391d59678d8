"""Load predictions in either format DetLens accepts, recognised from the content, not the name;
load_inputs: a ground truth and predictions together, as an evaluation wants them."""
from __future__ import annotations

from core.dataset import read_source
from core.problems import ValidationError
from core.submission import read_submission
from core.tables import Dataset, Predictions

FORMAT_CSV = "submission csv"
FORMAT_JSON = "coco results json"


def detect_format(data: bytes) -> str:
    """FORMAT_JSON when the first non-space character is '[' or '{', else FORMAT_CSV."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf").lstrip()
    return FORMAT_JSON if head[:1] in (b"[", b"{") else FORMAT_CSV


def load_predictions(source, *, dataset: Dataset | None = None, name: str | None = None) -> Predictions:
    """Read a submission CSV or a COCO results json (path, bytes or file-like) as `Predictions`.

    A results json names images by numeric id and needs `dataset` to map them to file names.
    """
    data, name, _ = read_source(source, name)
    if detect_format(data) == FORMAT_JSON:
        from core.results_json import read_results_json

        return read_results_json(data, dataset=dataset, name=name)
    return read_submission(data, dataset=dataset, name=name)


class UnusableInput(Exception):
    """load_inputs' refusal: which input (`role`: "ground truth" or "predictions"), its path and
    its ValidationError (`error.problems` lists every problem)."""

    def __init__(self, role: str, path, error: ValidationError):
        super().__init__(f"{path}: not a usable {role}")
        self.role, self.path, self.error = role, path, error


def load_inputs(gt_path, pred_path, *, ready=None) -> tuple[Dataset, Predictions] | None:
    """(dataset, predictions) from a ground truth and a predictions path, in any format each may be
    (core.formats.load_ground_truth, core.formats.load_any_predictions): the evaluation's inputs,
    loaded the way every caller (CLI, bench) should. The ground truth loads on a thread while a
    submission CSV is read and parsed beside it (the compiled number scan releases the GIL).

    ready(dataset) -> bool, once the ground truth is loaded: False stops there (returns None)
    before the predictions are finished. Raises UnusableInput, the ground truth's first.
    """
    from concurrent.futures import ThreadPoolExecutor

    from core.formats import load_any_predictions, load_ground_truth, read_predictions_early

    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(load_ground_truth, gt_path)
        try:
            early = read_predictions_early(pred_path)
        except ValidationError as exc:   # reported after the ground truth's problems
            early = exc
        try:
            dataset = loading.result()
        except ValidationError as exc:
            raise UnusableInput("ground truth", gt_path, exc) from None
    if ready is not None and not ready(dataset):
        return None
    try:
        if isinstance(early, ValidationError):
            raise early
        return dataset, load_any_predictions(pred_path, dataset, early=early)
    except ValidationError as exc:
        raise UnusableInput("predictions", pred_path, exc) from None
