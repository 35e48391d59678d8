"""Review decisions on label suspects, kept in a review file, applied to a COCO json as a new file.

    decision = decide(suspect_row, "accept")                  # the concrete edit, timestamped
    save_review(review_path(gt_path), {d["suspect_id"]: d, ...}, gt_sha256)
    fixed, log, problems = apply_decisions(coco_dict, decisions)   # the original dict is not modified

A decision is a plain dict (json as it is): suspect_id, kind, action (ACTIONS), edit (add |
relabel | move | delete | none), image_id, ann_id (-1 for add), category_id and bbox (COCO xywh)
after the edit, before_category_id and before_bbox, decided_at (UTC, ISO 8601). It carries
its edit, so applying needs only the ground truth and the decisions. The review file is
`<gt>.review.json` beside the ground truth: {"detlens_review": 1, "ground_truth": name,
"ground_truth_sha256": ..., "decisions": [...]}, written whole (core.output_files).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from core.output_files import write_text_atomic
from core.problems import Problem, Severity

ACCEPT, FIX_CLASS, TAKE_BOX, REJECT = "accept", "fix_class", "take_box", "reject"
ACTIONS = (ACCEPT, FIX_CLASS, TAKE_BOX, REJECT)
ACTION_LABELS = {ACCEPT: "Accept the suggested fix", FIX_CLASS: "Fix the class",
                 TAKE_BOX: "Take the model's box", REJECT: "Reject (the label is right)"}
EDITS = ("add", "relabel", "move", "delete", "none")
REVIEW_SUFFIX = ".review.json"
FORMAT_VERSION = 1
CHANGE_LOG_COLUMNS = ["ann_id", "kind", "edit", "image_id", "before", "after", "decided_at", "suspect_id"]


class ReviewError(ValueError):
    """A decision that cannot be made or a review file that cannot be read; the message says why."""


def review_path(gt_path: Path | str) -> Path:
    """Where the decisions on `gt_path` are kept: `<gt>.review.json` beside it."""
    gt_path = Path(gt_path)
    return gt_path.with_name(gt_path.name + REVIEW_SUFFIX)


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _xywh(x1, y1, x2, y2) -> list[float] | None:
    values = [float(v) for v in (x1, y1, x2, y2)]
    if any(math.isnan(v) for v in values):
        return None
    return [round(values[0], 2), round(values[1], 2), round(values[2] - values[0], 2), round(values[3] - values[1], 2)]


def decide(suspect, action: str, *, category_id: int | None = None, now: datetime | None = None) -> dict:
    """The decision on one suspect (a row of LabelIssues.suspects, as a mapping or namedtuple).

    accept: the suggested fix; fix_class: relabel the ground truth as category_id (a missing
    box: add the model's box with it); take_box: the model's box replaces the ground truth's
    (a missing box: added); reject: no change. ReviewError when the action does not fit.
    """
    s = suspect._asdict() if hasattr(suspect, "_asdict") else dict(suspect)
    if action not in ACTIONS:
        raise ReviewError(f"Invalid action {action!r}. Only {', '.join(ACTIONS)} are supported.")
    kind = str(s["kind"])
    gt_box = _xywh(s["gt_x1"], s["gt_y1"], s["gt_x2"], s["gt_y2"])
    model_box = _xywh(s["model_x1"], s["model_y1"], s["model_x2"], s["model_y2"])
    before_cls = int(s["category_id"]) if int(s["category_id"]) >= 0 else None
    edit, cls, box = "none", before_cls, gt_box
    if action == ACCEPT:
        edit = str(s["fix"])
        cls = int(s["suggested_category_id"])
        box = _xywh(s["fix_x1"], s["fix_y1"], s["fix_x2"], s["fix_y2"]) if edit != "delete" else None
    elif action == FIX_CLASS:
        if category_id is None:
            raise ReviewError("fix_class needs the new class (category_id)")
        cls = int(category_id)
        edit, box = ("add", model_box) if kind == "missing" else ("relabel", gt_box)
    elif action == TAKE_BOX:
        if model_box is None:
            raise ReviewError(f"suspect {s['suspect_id']}: there is no model box to take (a duplicate "
                              "ground truth); accept (delete it) or reject")
        edit, box = ("add", model_box) if kind == "missing" else ("move", model_box)
        cls = int(s["model_category_id"]) if kind == "missing" else before_cls
    return {
        "suspect_id": str(s["suspect_id"]), "kind": kind, "action": action, "edit": edit,
        "image_id": int(s["image_id"]), "ann_id": int(s["ann_id"]),
        "category_id": cls, "bbox": box, "before_category_id": before_cls, "before_bbox": gt_box,
        "decided_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------- the review file
def review_document(decisions: dict[str, dict], gt_name: str, gt_sha256: str | None) -> dict:
    return {"detlens_review": FORMAT_VERSION, "ground_truth": gt_name, "ground_truth_sha256": gt_sha256,
            "decisions": sorted(decisions.values(), key=lambda d: (d["decided_at"], d["suspect_id"]))}


def save_review(path: Path | str, decisions: dict[str, dict], gt_name: str, gt_sha256: str | None) -> None:
    """Write the review file whole (or leave the old one): OSError when it cannot be written."""
    write_text_atomic(path, json.dumps(review_document(decisions, gt_name, gt_sha256), indent=1))


def load_review(path: Path | str) -> tuple[dict[str, dict], str | None]:
    """(decisions by suspect_id, the ground truth's sha256 they were made on); {} when no file.

    ReviewError when the file is not a DetLens review file.
    """
    path = Path(path)
    if not path.exists():
        return {}, None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReviewError(f"{path}: cannot read the review file ({type(exc).__name__}: {exc}); "
                          "move it away to start a new review") from None
    return parse_review(doc, str(path))


def parse_review(doc, name: str) -> tuple[dict[str, dict], str | None]:
    if not isinstance(doc, dict) or "decisions" not in doc or not isinstance(doc["decisions"], list):
        raise ReviewError(f"{name}: not a DetLens review file (expected an object with a 'decisions' list, "
                          "as written by the Label review page)")
    decisions = {}
    needed = ("suspect_id", "kind", "action", "edit", "image_id", "ann_id", "category_id", "bbox", "decided_at")
    for n, d in enumerate(doc["decisions"], start=1):
        missing = [k for k in needed if not isinstance(d, dict) or k not in d]
        if missing:
            raise ReviewError(f"{name}: decision {n} lacks {', '.join(missing)}; the file was edited or "
                              "is from another tool")
        if d["edit"] not in EDITS:
            raise ReviewError(f"{name}: decision {n} has edit {d['edit']!r}; expected one of {', '.join(EDITS)}")
        decisions[str(d["suspect_id"])] = d
    return decisions, doc.get("ground_truth_sha256")


# ------------------------------------------------------------------------------- applying
def apply_decisions(coco: dict, decisions) -> tuple[dict, pd.DataFrame, list[Problem]]:
    """The corrected COCO dict (a copy; every other key kept), the change log (CHANGE_LOG_COLUMNS,
    one row per applied edit) and the problems. A decision that cannot be applied (an
    annotation, image or class the ground truth lacks) is an ERROR and nothing is returned
    fixed: the caller must not write a file that lacks an accepted change."""
    fixed = copy.deepcopy(coco)
    anns = fixed.get("annotations", [])
    by_id = {}
    for position, ann in enumerate(anns):
        by_id[int(ann["id"])] = position  # a repeated id: the last one, as the scorer keeps
    images = {int(im["id"]) for im in fixed.get("images", [])}
    classes = {int(c["id"]) for c in fixed.get("categories", [])}
    next_id = max(by_id, default=-1) + 1
    deleted: set[int] = set()
    log, problems = [], []
    ordered = sorted(decisions.values() if isinstance(decisions, dict) else decisions,
                     key=lambda d: (str(d["decided_at"]), str(d["suspect_id"])))
    for d in ordered:
        edit, ann_id = d["edit"], int(d["ann_id"])
        where = f"decision {d['suspect_id']}"
        if edit == "none":
            continue
        if int(d["image_id"]) not in images:
            problems.append(Problem(Severity.ERROR, f"{where}: image id {d['image_id']} is not in the ground "
                                    "truth: decisions made on another ground truth?"))
            continue
        if d.get("category_id") is not None and edit in ("add", "relabel") and int(d["category_id"]) not in classes:
            problems.append(Problem(Severity.ERROR, f"{where}: category id {d['category_id']} is not a class "
                                    "of the ground truth"))
            continue
        if edit == "add":
            box = [float(v) for v in d["bbox"]]
            anns.append({"id": next_id, "image_id": int(d["image_id"]), "category_id": int(d["category_id"]),
                         "bbox": box, "area": round(box[2] * box[3], 2), "iscrowd": 0})
            log.append(_log_row(next_id, d, "", _describe(d["category_id"], box)))
            by_id[next_id] = len(anns) - 1
            next_id += 1
            continue
        if ann_id in deleted:
            problems.append(Problem(Severity.WARNING, f"{where}: annotation {ann_id} was deleted by an earlier "
                                    f"decision; this {edit} is not applied"))
            continue
        if ann_id not in by_id:
            problems.append(Problem(Severity.ERROR, f"{where}: annotation id {ann_id} is not in the ground truth: "
                                    "decisions made on another ground truth?"))
            continue
        ann = anns[by_id[ann_id]]
        before = _describe(ann["category_id"], ann["bbox"])
        if edit == "delete":
            deleted.add(ann_id)
            log.append(_log_row(ann_id, d, before, "deleted"))
            continue
        if edit == "relabel":
            ann["category_id"] = int(d["category_id"])
        else:  # move
            box = [float(v) for v in d["bbox"]]
            ann["bbox"], ann["area"] = box, round(box[2] * box[3], 2)
        log.append(_log_row(ann_id, d, before, _describe(ann["category_id"], ann["bbox"])))
    if deleted:
        fixed["annotations"] = [a for a in anns if int(a["id"]) not in deleted]
    return fixed, pd.DataFrame(log, columns=CHANGE_LOG_COLUMNS), problems


def _describe(category_id, bbox) -> str:
    return f"class {int(category_id)} [{', '.join(f'{float(v):g}' for v in bbox)}]"


def _log_row(ann_id: int, d: dict, before: str, after: str) -> dict:
    return {"ann_id": ann_id, "kind": d["kind"], "edit": d["edit"], "image_id": int(d["image_id"]),
            "before": before, "after": after, "decided_at": d["decided_at"], "suspect_id": d["suspect_id"]}


def change_log_csv(log: pd.DataFrame) -> str:
    buffer = io.StringIO()
    log.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return buffer.getvalue()


def label_fix_worth(before, after, preds) -> pd.DataFrame:
    """Per class and overall ('all'): AP@0.5 and AP of preds on the ground truth before and after
    the fixes (Dataset, Dataset, Predictions). Biased upwards when preds found the suspects."""
    from core.evaluation import evaluate

    ev_before, ev_after = evaluate(before, preds), evaluate(after, preds)
    a = ev_before.per_class[["category_id", "name", "ap50", "ap"]]
    b = ev_after.per_class[["category_id", "ap50", "ap"]]
    table = a.merge(b, on="category_id", suffixes=("_before", "_after"))
    overall = pd.DataFrame([{"category_id": -1, "name": "all",
                             "ap50_before": ev_before.stats["map50"], "ap_before": ev_before.stats["map"],
                             "ap50_after": ev_after.stats["map50"], "ap_after": ev_after.stats["map"]}])
    table = pd.concat([overall, table], ignore_index=True)
    table["ap50_gain"] = table["ap50_after"] - table["ap50_before"]
    return table
