"""Load predictions in either format DetLens accepts, recognised from the content, not the name."""
from __future__ import annotations

from core.dataset import read_source
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
