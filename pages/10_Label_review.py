"""Label review: suspected ground-truth errors as a queue; accept, fix, reject; export a corrected json."""
from __future__ import annotations

import json

import streamlit as st

from core.dataset import load_coco
from core.label_issues import SUSPECT_KINDS, SuspectKind
from core.review import (ACCEPT, FIX_CLASS, REJECT, TAKE_BOX, apply_decisions, change_log_csv,
                         label_fix_worth, review_document)
from ui import label_review as LR
from ui import state as S
from ui.sidebar import active_data, page_setup
from ui.widgets import need_evaluation

page_setup("Label review")
LR.init()
data = active_data()
st.title("Label review")
st.caption("Where the model's confident boxes disagree with the labels: missing annotations, wrong classes, "
           "loose boxes, duplicates. Use **out-of-fold predictions** (a model that trained on these labels "
           "repeats their errors). Keys: A accept · F fix class · B take the model's box · X reject · "
           "S skip · ← → move.")
if not need_evaluation(data):
    st.stop()
issues = LR.suspects(data)
if issues is None:
    st.stop()
store = LR.store_for(data)
decided = LR.decisions(data, store)
table = issues.suspects
names = data.class_names

top = st.columns([2, 2, 1])
kinds = top[0].multiselect("Kinds", [k.value for k in SUSPECT_KINDS], key=LR.KINDS,
                           format_func=lambda k: f"{SuspectKind(k).label} ({issues.counts()[k]})")
classes = top[1].multiselect("Classes", list(names.values()), key=LR.CLASSES)
top[2].toggle("Show decided", key=LR.SHOW_DECIDED)
ids = [cid for cid, n in names.items() if n in classes]
todo = LR.queue(table, kinds, ids, decided, st.session_state[LR.SHOW_DECIDED])
n_done = sum(1 for sid in table["suspect_id"] if sid in decided)
st.progress(n_done / max(len(table), 1), text=f"{n_done} of {len(table)} reviewed")
st.caption(store.message)
if st.session_state[LR.NOTICE]:
    st.warning(st.session_state[LR.NOTICE])

if not len(todo):
    st.info("Nothing left in the queue with these filters." if len(table) else
            "No suspects: the predictions agree with the labels.")
else:
    LR.move(0, len(todo))  # keep the position inside the queue
    row = todo.iloc[st.session_state[LR.POSITION]].to_dict()
    left, right = st.columns(2)
    left.image(LR.crop(data, row), width=480,
               caption=f"{st.session_state[LR.POSITION] + 1} of {len(todo)} in the queue · ground truths in "
                       "cyan, the model's box in magenta")
    with right:
        st.markdown(LR.describe(data, row))
        if row["suspect_id"] in decided:
            d = decided[row["suspect_id"]]
            st.info(f"Decided: {d['action']} ({d['edit']}) at {d['decided_at']}")
            st.button("Undo this decision", key="_lr_undo", on_click=LR.undo, args=(data, store, row["suspect_id"]))
        args = (data, store, row)
        st.button("Accept the suggested fix", key="_lr_accept", shortcut="A", type="primary",
                  on_click=LR.record, args=(*args, ACCEPT), width="stretch")
        options = list(names)
        default = row["suggested_category_id"] if row["suggested_category_id"] in names else options[0]
        new_class = st.selectbox("Class", options, index=options.index(default), key=f"_lr_class:{row['suspect_id']}",
                                 format_func=data.class_name)
        st.button("Fix the class", key="_lr_fix", shortcut="F", on_click=LR.record,
                  args=(*args, FIX_CLASS, new_class), width="stretch")
        st.button("Take the model's box", key="_lr_box", shortcut="B", on_click=LR.record,
                  args=(*args, TAKE_BOX), width="stretch", disabled=row["model_category_id"] < 0)
        st.button("Reject (the label is right)", key="_lr_reject", shortcut="X", on_click=LR.record,
                  args=(*args, REJECT), width="stretch")
        nav = st.columns(3)
        nav[0].button("Previous", key="_lr_prev", shortcut="Left", on_click=LR.move, args=(-1, len(todo)))
        nav[1].button("Skip", key="_lr_skip", shortcut="S", on_click=LR.move, args=(1, len(todo)))
        nav[2].button("Next", key="_lr_next", shortcut="Right", on_click=LR.move, args=(1, len(todo)))
        if st.button("Open the image in the explorer", key="_lr_open"):
            st.session_state[S.EXPLORER_IMAGE] = row["file_name"]
            st.session_state[S.EXPLORER_CLASSES] = []
            st.session_state[S.EXPLORER_OUTCOMES] = []
            st.switch_page("pages/2_Image_explorer.py")

with st.expander(f"All {len(todo)} suspects in the queue"):
    shown = todo[["rank", "kind", "file_name", "ann_id", "category_id", "suggested_category_id",
                  "model_score", "iou", "score"]].head(500)
    st.dataframe(shown.assign(category_id=shown["category_id"].map(lambda c: data.class_name(c) if c >= 0 else "-"),
                              suggested_category_id=shown["suggested_category_id"].map(data.class_name)),
                 hide_index=True, key="_lr_table")

st.subheader("Export")
if not decided:
    st.caption("Decide on suspects to export a corrected ground truth.")
else:
    doc = json.loads(store.gt_bytes) if store.gt_bytes is not None and store.gt_name.endswith(".json") else None
    cols = st.columns(3)
    cols[0].download_button("Review file (.review.json)", json.dumps(review_document(decided, store.gt_name,
                            store.gt_sha256), indent=1), file_name=f"{store.gt_name}.review.json", key="_lr_dl_review")
    if doc is None:
        st.caption("The corrected copy is made from a COCO json ground truth: convert this one with `python -m "
                   "core convert`, then `python -m core apply-review GT.json REVIEW.json --out FIXED.json`.")
    else:
        fixed, log, problems = apply_decisions(doc, decided)
        for p in problems:
            (st.error if p.is_error else st.warning)(str(p))
        if not any(p.is_error for p in problems):
            stem = store.gt_name.rsplit(".", 1)[0]
            cols[1].download_button(f"Corrected json ({len(log)} changes)", json.dumps(fixed),
                                    file_name=f"{stem}.fixed.json", key="_lr_dl_json")
            cols[2].download_button("Change log (CSV)", change_log_csv(log), file_name=f"{stem}.changes.csv",
                                    key="_lr_dl_log")
            if st.button("Measure: mAP of these predictions before / after the fixes", key="_lr_worth"):
                after = load_coco(json.dumps(fixed).encode(), name=f"{stem}.fixed.json")
                worth = label_fix_worth(data.dataset, after, data.predictions)
                worth["name"] = worth["name"].astype(str)
                st.dataframe(worth.round(4), hide_index=True, key="_lr_worth_table")
                st.caption("Biased upwards when these predictions found the suspects: the fixes agree with "
                           "the model by construction. Score another model's predictions to judge the fixes.")
