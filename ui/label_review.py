"""Glue of the Label review page: the cached suspects, the review store, the queue and its buttons.

Decisions live in the session under DECISIONS (per ground truth) and are written after every
click to `<gt>.review.json` beside the ground truth (core.review), so they survive a restart.
Where that file cannot be written (an uploaded ground truth, a read-only folder, a folder
outside the data roots on a network) they stay in the session and the page says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.data_roots import PathRefused
from core.drawing import crop_region
from core.label_issues import LabelIssuesError, SuspectKind, find_label_issues
from core.outcomes import PREDICTION_COLOR, GTStatus
from core.output_files import OutputError, check_writable
from core.review import ReviewError, decide, file_sha256, load_review, review_path, save_review
from ui import loaders
from ui import state as S

# session-state keys of this page (declared here, the one module that uses them)
DECISIONS = "label_review_decisions"   # dict dataset_key -> {suspect_id: decision}
POSITION = "label_review_position"     # int: place in the filtered queue
KINDS = "label_review_kinds"           # list[str]: suspect kinds shown (empty = all)
CLASSES = "label_review_classes"       # list[str]: class names shown (empty = all)
SHOW_DECIDED = "label_review_show_decided"  # bool: decided suspects stay in the queue
NOTICE = "label_review_notice"         # str | None: what the last save said
GT_COLOR = GTStatus.PLAIN.color
MODEL_COLOR = PREDICTION_COLOR


def init() -> None:
    for key, value in ((DECISIONS, {}), (POSITION, 0), (KINDS, []), (CLASSES, []), (SHOW_DECIDED, False),
                       (NOTICE, None)):
        st.session_state.setdefault(key, value)


def suspects(data):
    """The LabelIssues of the active data (cached with its evaluation), or None after st.error."""
    def create():
        ev = data.evaluation if data.evaluation is not None and abs(data.iou_thr - 0.5) < 1e-9 else None
        return find_label_issues(data.dataset, data.predictions, evaluation=ev)
    try:
        with st.spinner("Looking for suspected label errors ..."):
            return loaders.derived(("label_issues", data.dataset_key, data.predictions_key), create,
                                   [data.evaluation])
    except LabelIssuesError as exc:
        st.error(str(exc))
        return None


@dataclass
class Store:
    """Where this ground truth's decisions are written (None: the session only) and why."""

    path: Path | None
    message: str
    gt_name: str
    gt_sha256: str | None
    gt_bytes: bytes | None = None  # the ground truth's file, for the corrected copy


def store_for(data) -> Store:
    """The review file beside the ground truth, when it may be written; else why not."""
    gt_name = str(data.gt_label)
    uploads = st.session_state.get(S.UPLOADED_GT, {})
    if data.gt_label in uploads or data.folder is None:
        content = loaders.upload_bytes(uploads[data.gt_label].sha256) if data.gt_label in uploads else None
        return Store(None, "The ground truth is an upload: decisions are kept in this session only; "
                     "download the review file below before closing the tab.", gt_name,
                     file_sha256(content) if content else None, content)
    gt_path = Path(data.folder) / data.gt_label
    try:
        content = gt_path.read_bytes()
    except OSError:
        content = None
    sha = file_sha256(content) if content is not None else None
    path = review_path(gt_path)
    try:
        S.data_roots().check(path.parent)
        check_writable(path, "review file")
    except (PathRefused, OutputError) as exc:
        return Store(None, f"Decisions cannot be saved beside the ground truth ({exc}); they are kept in "
                     "this session only: download the review file below.", gt_name, sha, content)
    return Store(path, f"Decisions are saved as they are made to `{path}`.", gt_name, sha, content)


def decisions(data, store: Store) -> dict:
    """This ground truth's decisions: read from its review file once per session."""
    every = st.session_state[DECISIONS]
    if data.dataset_key not in every:
        loaded = {}
        if store.path is not None:
            try:
                loaded, sha = load_review(store.path)
                if sha and store.gt_sha256 and sha != store.gt_sha256:
                    st.session_state[NOTICE] = (f"{store.path.name} was made on another version of "
                                                f"{store.gt_name}; its decisions are kept as they are.")
            except ReviewError as exc:
                st.session_state[NOTICE] = str(exc)
        every[data.dataset_key] = loaded
    return every[data.dataset_key]


def queue(table: pd.DataFrame, kinds: list[str], class_ids: list[int], decided: dict, show_decided: bool) -> pd.DataFrame:
    """The suspects to go through, in rank order, after the filters."""
    keep = np.ones(len(table), bool)
    if kinds:
        keep &= table["kind"].isin(kinds).to_numpy()
    if class_ids:
        keep &= (table["category_id"].isin(class_ids) | table["suggested_category_id"].isin(class_ids)).to_numpy()
    if not show_decided:
        keep &= ~table["suspect_id"].isin(list(decided)).to_numpy()
    return table[keep].reset_index(drop=True)


def record(data, store: Store, row: dict, action: str, category_id: int | None = None) -> None:
    """Button callback: decide, save, move on (the next undecided suspect takes this place)."""
    every = st.session_state[DECISIONS]
    mine = dict(every.get(data.dataset_key, {}))
    try:
        mine[row["suspect_id"]] = decide(row, action, category_id=category_id)
    except ReviewError as exc:
        st.session_state[NOTICE] = str(exc)
        return
    every[data.dataset_key] = mine
    if st.session_state[SHOW_DECIDED]:
        st.session_state[POSITION] += 1
    st.session_state[NOTICE] = None
    if store.path is not None:
        try:
            save_review(store.path, mine, store.gt_name, store.gt_sha256)
        except OSError as exc:
            st.session_state[NOTICE] = (f"Could not write {store.path} ({exc.strerror or exc}); the decision "
                                        "is kept in this session: download the review file below.")


def undo(data, store: Store, suspect_id: str) -> None:
    every = st.session_state[DECISIONS]
    mine = {k: v for k, v in every.get(data.dataset_key, {}).items() if k != suspect_id}
    every[data.dataset_key] = mine
    if store.path is not None:
        try:
            save_review(store.path, mine, store.gt_name, store.gt_sha256)
        except OSError as exc:
            st.session_state[NOTICE] = f"Could not write {store.path} ({exc.strerror or exc})."


def move(step: int, n: int) -> None:
    st.session_state[POSITION] = int(np.clip(st.session_state[POSITION] + step, 0, max(n - 1, 0)))


def crop(data, row: dict) -> bytes:
    """The suspect in its context: ground truths in GT_COLOR (the image's others that reach into
    the crop too), the model's box in MODEL_COLOR."""
    images, ann = data.dataset.images, data.dataset.annotations
    i = int(row["image_index"])
    size = (float(images["width"].iloc[i]), float(images["height"].iloc[i]))
    gt = np.array([row["gt_x1"], row["gt_y1"], row["gt_x2"], row["gt_y2"]], dtype=np.float64)
    model = np.array([row["model_x1"], row["model_y1"], row["model_x2"], row["model_y2"]], dtype=np.float64)
    boxes = np.array([b for b in (gt, model) if not np.isnan(b).any()]).reshape(-1, 4)
    if row["other_ann_id"] >= 0:
        boxes = np.vstack([boxes, ann.loc[ann["id"] == row["other_ann_id"], ["x1", "y1", "x2", "y2"]].to_numpy(np.float64)])
    focus = np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])
    left, top, right, bottom = crop_region(focus, *size)
    near = ann[(ann["image_index"] == i) & (ann["x2"] > left) & (ann["x1"] < right) & (ann["y2"] > top)
               & (ann["y1"] < bottom)][["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    outlines = [(box, GT_COLOR) for box in near]
    if not np.isnan(model).any():
        outlines.append((model, MODEL_COLOR))
    return loaders.crop_png(data.root, str(images["file_name"].iloc[i]), size, focus, outlines, out_side=480,
                            upright=data.upright_pixels)


def describe(data, row: dict) -> str:
    """What the suspect is, the model's evidence and the suggested fix, as markdown."""
    name = data.class_name
    kind = SuspectKind(row["kind"])
    lines = [f"**{kind.label}** · suspicion **{row['score']:.3f}** (rules {row['detlens_score']:.3f}"
             + (f", cleanlab {row['cleanlab_score']:.3f})" if not np.isnan(row["cleanlab_score"]) else ")"),
             f"Image `{row['file_name']}` (id {row['image_id']})"]
    if row["ann_id"] >= 0:
        lines.append(f"Ground truth: annotation {row['ann_id']}, **{name(row['category_id'])}**")
    if row["model_category_id"] >= 0:
        lines.append(f"Model: **{name(row['model_category_id'])}** score {row['model_score']:.2f}, "
                     f"IoU with the ground truth {row['iou']:.2f}")
    if row["other_ann_id"] >= 0:
        lines.append(f"Duplicates annotation {row['other_ann_id']} (IoU {row['iou']:.2f})")
    fix = {"add": f"add the model's box as {name(row['suggested_category_id'])}",
           "relabel": f"relabel as {name(row['suggested_category_id'])}",
           "move": "replace the box by the model's", "delete": "delete this annotation"}[row["fix"]]
    lines.append(f"Suggested fix: **{fix}**. {kind.description}")
    return "  \n".join(lines)
