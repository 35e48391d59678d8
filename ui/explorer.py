"""The explorer's image list, cached per (data, threshold, order, filters): a slider move back
to a value, or a prev/next click, costs nothing; and its navigation (previous, position, next,
jump)."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.browse import find_image, image_table, images_with, sort_images
from ui import state as S
from ui.sidebar import ActiveData

JUMP_ERROR = "_explorer_jump_error"
POSITION = "_explorer_position"  # the position box's key starts so; the list's order ends it


def _go_to(key: str) -> None:
    st.session_state[S.EXPLORER_IMAGE] = key
    st.session_state[JUMP_ERROR] = None


def _go_to_position(keys: list[str], widget: str) -> None:
    _go_to(keys[int(st.session_state[widget]) - 1])


def _jump(listing: ImageList) -> None:
    query = st.session_state["_explorer_jump"]
    found = find_image(listing.table, query)
    if found is None:
        st.session_state[JUMP_ERROR] = (f"No image '{query}' in the list (file name or image id; "
                                        "filters above may hide it).")
    else:
        _go_to(listing.keys[found])
    st.session_state["_explorer_jump"] = ""


@dataclass(frozen=True)
class ImageList:
    """Sorted, filtered rows of core.browse.image_table; keys in order; key -> row position."""

    table: pd.DataFrame
    keys: list[str]
    positions: dict[str, int]


@st.cache_resource(max_entries=32, show_spinner=False)
def _image_list(dataset_key: str, pred_key: str, iou_thr: float, score_thr: float, order: str,
                class_ids: tuple | None, outcomes: tuple | None, second: tuple | None, _data: ActiveData,
                _disagreement: pd.DataFrame | None, subset: str | None = None,
                _subset_keys: tuple | None = None) -> ImageList:
    view = _data.prediction_view
    table = view.image_table() if view is not None else image_table(_data.dataset, None)
    if _subset_keys is not None:  # a slice or chart opened here (ui.analysis)
        table = table[table["key"].isin(_subset_keys)]
    if _disagreement is not None:  # per image of the agreement's dataset (the active one)
        by_name = _disagreement.set_index("file_name")["disagreements"]
        table["disagreement"] = by_name.reindex(table["key"]).to_numpy(dtype="float64")
    if class_ids is not None or outcomes is not None:
        dets, gts = (view.filter_sources() if view is not None else
                     (None, _data.dataset.annotations if _data.has_gt_boxes else None))
        wanted = images_with(dets, gts, list(class_ids) if class_ids else None,
                             list(outcomes) if outcomes else None)
        table = table[table["image_index"].isin(wanted)]
    table = sort_images(table, order).reset_index(drop=True)
    keys = table["key"].tolist()
    return ImageList(table, keys, {k: i for i, k in enumerate(keys)})


def image_list(data: ActiveData, order: str, class_ids: list | None, outcomes: list | None,
               second: tuple | None = None, disagreement: pd.DataFrame | None = None) -> ImageList:
    """The images the explorer browses, filtered and sorted (treat as read-only). second: the
    cache key (label, content key, ref threshold) of the set `disagreement` (Agreement.per_image)
    comes from, for the "most disagreement" order."""
    subset = st.session_state.get(S.EXPLORER_SUBSET)
    return _image_list(data.dataset_key, data.predictions_key, round(data.iou_thr, 4),
                       round(data.score_thr, 4), order, tuple(class_ids) if class_ids else None,
                       tuple(outcomes) if outcomes else None, second, data, disagreement,
                       f"{subset[0]}:{hash(subset[1])}" if subset else None, subset[1] if subset else None)


def disagreement_source(data: ActiveData) -> tuple[tuple | None, pd.DataFrame | None]:
    """A selectbox of the second submission; (its cache key, per-image disagreement with the
    active one at the Compare page's reference threshold) or (None, None) when there is none."""
    from ui.agreement import active_set, agreement_of, load_named_set, other_sets

    if data.predictions is None:
        st.info("Choose the active predictions in the sidebar to sort by disagreement with a second one.")
        return None, None
    names = other_sets(data)
    if not names:
        st.info("No second submission in the dataset folder or uploads: add one to sort by disagreement.")
        return None, None
    label = st.selectbox("Second submission", names, help="Its boxes are evaluated against the active "
                         "submission's boxes scoring ≥ the reference threshold (as on the Compare page); "
                         "images with the most unmatched boxes on either side come first.",
                         **S.bind(S.EXPLORER_SECOND, names))
    other = load_named_set(data, label)
    if other is None:
        st.warning(f"{label} could not be loaded; choose another.")
        return None, None
    ref_thr = float(st.session_state[S.AGREE_REF_THR])
    ag = agreement_of(data, active_set(data), other, ref_thr)
    st.caption(f"Agreement of {label} with the active submission's boxes ≥ {ref_thr:.2f}: mAP@0.5 "
               f"{ag.map50:.3f}; disagreements counted at score ≥ {ag.other_thr:.2f}.")
    return (label, other.key, ref_thr), ag.per_image


def navigation(listing: ImageList) -> tuple[int, st.delta_generator.DeltaGenerator]:
    """Previous / position / next / jump; returns the shown row and the cell for its facts."""
    keys = listing.keys
    position = listing.positions.get(st.session_state[S.EXPLORER_IMAGE], 0)
    st.session_state[S.EXPLORER_IMAGE] = keys[position]
    nav = st.columns([0.6, 1.2, 0.6, 2.2, 3])
    nav[0].button("◀ Previous", key="_explorer_prev", on_click=_go_to,
                  args=(keys[max(position - 1, 0)],), disabled=position == 0, width="stretch")
    # A position means an image only in this order: keyed by it, a position the browser sends
    # from an older order (score key presses reorder the list faster than it redraws) is dropped
    widget = f"{POSITION}_{hash(tuple(keys)) & 0xFFFFFFFF:08x}"
    st.session_state[widget] = position + 1
    nav[1].number_input(f"Image (of {len(keys):,})", min_value=1, max_value=len(keys), step=1,
                        key=widget, on_change=_go_to_position, args=(keys, widget),
                        label_visibility="collapsed")
    nav[2].button("Next ▶", key="_explorer_next", on_click=_go_to,
                  args=(keys[min(position + 1, len(keys) - 1)],),
                  disabled=position >= len(keys) - 1, width="stretch")
    nav[3].text_input("Jump to", key="_explorer_jump", on_change=_jump, args=(listing,),
                      label_visibility="collapsed", placeholder="jump to file name or image id")
    if st.session_state.get(JUMP_ERROR):
        st.error(st.session_state[JUMP_ERROR])
    return position, nav[4]
