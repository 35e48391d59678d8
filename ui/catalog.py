"""Streamlit glue of the submission catalog: open the store once, register what the sidebar
loads, cache results, and the Submissions page's and Compare's widgets.

A store that cannot be opened (unreachable server, corrupt or foreign file, newer schema) is a
message; every page keeps working without the catalog. The URL shown is always masked.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pandas as pd
import streamlit as st

from core.catalog.store import ENV_VAR, Catalog, CatalogError, mask_url, resolve_url
from ui import loaders
from ui import state as S

RETRY_S = 60  # a store that failed is tried again after this long (not on every rerun)
SECRET_KEY = "detlens_db_url"  # st.secrets key (.streamlit/secrets.toml) for team mode

_FAILED: dict[str, tuple[float, str]] = {}
_DONE: set = set()  # (url, what, key...) already written by this process
_LOCK = threading.Lock()


def catalog_url() -> str:
    """DETLENS_DB_URL, else st.secrets['detlens_db_url'], else SQLite at ~/.detlens/catalog.sqlite."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        try:
            url = str(st.secrets.get(SECRET_KEY, "") or "").strip()
        except Exception:  # noqa: BLE001 - no secrets file is the normal case
            url = ""
    return resolve_url(url or None)


@st.cache_resource(show_spinner=False, max_entries=4)
def _open(url: str) -> Catalog:
    return Catalog(url)  # raises CatalogError: not cached, tried again after RETRY_S


def get_catalog() -> tuple[Catalog | None, str | None]:
    """The store, or (None, the message saying why it cannot be used)."""
    url = catalog_url()
    failed = _FAILED.get(url)
    if failed is not None and time.monotonic() - failed[0] < RETRY_S:
        return None, failed[1]
    try:
        catalog = _open(url)
    except CatalogError as exc:
        _FAILED[url] = (time.monotonic(), str(exc))
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on a page
        message = f"submission catalog {mask_url(url)}: cannot be used: {type(exc).__name__}"
        _FAILED[url] = (time.monotonic(), message)
        return None, message
    _FAILED.pop(url, None)
    return catalog, None


def _store_failed(exc: Exception) -> None:
    _FAILED[catalog_url()] = (time.monotonic(), str(exc))
    st.sidebar.warning(f"The submission catalog is unavailable (the app works without it): {exc}")


def note_loaded(source, loaded, dataset_key: str, gt_label: str | None, evaluation, iou_thr: float) -> None:
    """Register a prediction file the sidebar loaded, and cache its evaluation; never raises."""
    if source is None or loaded is None or loaded.value is None or not loaded.key:
        return
    catalog, error = get_catalog()
    if catalog is None:
        if error and not st.session_state.get("_catalog_error_shown"):  # in full once per session
            st.session_state["_catalog_error_shown"] = True
            st.sidebar.warning(f"The submission catalog is unavailable (the app works without it): {error}")
        elif error:
            st.sidebar.caption("Submission catalog unavailable: nothing is registered (the Submissions page says why).")
        return
    try:
        register_source(catalog, source, loaded.key, loaded.value)
        if evaluation is not None and dataset_key:
            cache_evaluation(catalog, dataset_key, gt_label, loaded.key, evaluation, iou_thr)
    except CatalogError as exc:
        _store_failed(exc)
    except Exception as exc:  # noqa: BLE001 - the catalog must never break a page
        _store_failed(CatalogError(f"{catalog.masked_url}: {type(exc).__name__}"))


def register_source(catalog: Catalog, source, key: str, predictions) -> None:
    """Catalogue a Source's bytes once per process (by content)."""
    from core.catalog.service import counts_of

    memo = (catalog.url, "sub", key)
    if memo in _DONE:
        return
    if catalog.find(key) is None:
        content = source.read()
        data = content.read_bytes() if hasattr(content, "read_bytes") else content
        if data is None:
            return
        catalog.register(data, source.name.rsplit("/", 1)[-1], **counts_of(predictions))
    with _LOCK:
        _DONE.add(memo)


def cache_evaluation(catalog: Catalog, dataset_key: str, gt_name: str | None, pred_key: str, evaluation,
                     iou_thr: float) -> None:
    from core.catalog.results import result_payload

    memo = (catalog.url, "result", dataset_key, pred_key, round(float(iou_thr), 6))
    if memo in _DONE:
        return
    if catalog.result(dataset_key, pred_key, iou_thr) is None:
        catalog.save_result(dataset_key, pred_key, iou_thr, result_payload(evaluation), gt_name=gt_name)
    with _LOCK:
        _DONE.add(memo)


# ----------------------------------------------------------------------- bootstrap widgets
def bootstrap(ev_a, ev_b, n_resamples: int = 1000):
    """Paired bootstrap of mAP(B) - mAP(A), cached for as long as both evaluations are."""
    from core.catalog.bootstrap import paired_bootstrap

    return loaders.derived(("bootstrap", n_resamples), lambda: paired_bootstrap(ev_a, ev_b, n_resamples=n_resamples),
                           [ev_a, ev_b])


def bootstrap_section(ev_a, ev_b, name_a: str, name_b: str) -> None:
    """'Is the difference real?': the interval of B − A and how often B wins."""
    st.markdown(f"**Is the difference real?** Paired bootstrap over images (1,000 resamples), "
                f"mAP@{ev_a.iou_thr:g} of B ({name_b}) − A ({name_a}), every box counted.")
    try:
        with st.spinner("Bootstrapping ..."):
            result = bootstrap(ev_a, ev_b)
    except ValueError as exc:
        st.info(str(exc))
        return
    cols = st.columns(3)
    cols[0].metric("B − A", f"{result.delta:+.4f}")
    cols[1].metric(f"{result.confidence:.0%} interval", f"[{result.low:+.4f}, {result.high:+.4f}]")
    cols[2].metric("B beats A in", f"{result.p_b_better:.1%}")
    (st.success if result.significant else st.info)(result.sentence(name_a, name_b))


# ----------------------------------------------------------------------- Submissions page
EDITABLE = {"name": "display_name", "model": "model", "LB score": "lb_score", "private score": "private_score",
            "author": "author", "notes": "notes"}


# the Submissions table's columns, in the order shown (sha256 is kept for lookups, not shown)
TABLE_COLUMNS = ["id", "name", "val mAP@0.5", "val mAP", "LB score", "private score", "model", "author",
                 "first seen", "boxes", "images", "size (MB)", "file", "notes", "sha256"]


def submissions_table(catalog: Catalog, gt_key: str, iou_thr: float = 0.5) -> pd.DataFrame:
    """One row per submission with its cached validation numbers against gt_key."""
    results = catalog.results_for(gt_key, iou_thr) if gt_key else {}
    rows = []
    for sub in catalog.list():
        stats = results.get(sub.sha256, {}).get("stats", {})
        rows.append({"id": sub.id, "name": sub.name, "val mAP@0.5": stats.get("map50"), "val mAP": stats.get("map"),
                     "LB score": sub.lb_score, "private score": sub.private_score, "model": sub.model or "",
                     "author": sub.author or "", "first seen": pd.Timestamp(sub.first_seen),
                     "boxes": sub.n_boxes, "images": sub.n_images, "size (MB)": round(sub.size_bytes / 1e6, 2),
                     "file": sub.file_name, "notes": sub.notes or "", "sha256": sub.sha256})
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    numbers = ["val mAP@0.5", "val mAP", "LB score", "private score"]
    table[numbers] = table[numbers].astype(np.float64)  # all-empty columns stay editable numbers
    return table


def save_edits(catalog: Catalog, before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """Write only the cells the user changed (no other field is written, so no edit is lost)."""
    saved = []
    old = before.set_index("id")
    for row in after.to_dict("records"):
        changed = {}
        for column, field in EDITABLE.items():
            new, was = row.get(column), old.at[row["id"], column]
            if _differs(new, was):
                changed[field] = None if new is None or (isinstance(new, float) and np.isnan(new)) or new == "" else new
        if changed.get("display_name", "x") is None:
            changed["display_name"] = None  # an emptied name falls back to the file name
        if changed:
            catalog.update(int(row["id"]), **changed)
            saved.append(f"#{row['id']}: " + ", ".join(changed))
    return saved


def _differs(a, b) -> bool:
    empty = lambda v: v is None or v == "" or (isinstance(v, float) and np.isnan(v))  # noqa: E731
    if empty(a) and empty(b):
        return False
    return empty(a) != empty(b) or str(a) != str(b)


def correlations(table: pd.DataFrame) -> tuple[float, float, int]:
    """Pearson and Spearman of val mAP@0.5 against LB score over rows having both; and their count."""
    both = table.dropna(subset=["val mAP@0.5", "LB score"])
    if len(both) < 3:
        return float("nan"), float("nan"), len(both)
    x, y = both["val mAP@0.5"].astype(float), both["LB score"].astype(float)
    return float(x.corr(y)), float(x.rank().corr(y.rank())), len(both)


def open_in(catalog: Catalog, data, ids: list[int], state_key: str, page: str) -> None:
    """Load the chosen submissions against the active GT, offer them as prediction sets, go to page."""
    from core.problems import ValidationError
    from ui.sidebar import register_predictions

    labels = []
    for sub_id in ids:
        sub = catalog.get(sub_id)
        label = f"catalog #{sub.id}: {sub.name}"
        try:
            preds = submission_predictions(catalog, sub, data)
        except ValidationError as exc:
            st.error(f"{sub.name} cannot be read against {data.gt_label}: {exc}")
            return
        register_predictions(label, preds, activate=False)
        labels.append(label)
    st.session_state[state_key] = labels
    st.switch_page(page)


def evaluate_missing(catalog: Catalog, data, table: pd.DataFrame) -> int:
    """Evaluate (and cache) every catalogued submission without a result on the active GT."""
    from core.catalog.service import evaluate_cached
    from core.problems import ValidationError

    missing = table[table["val mAP@0.5"].isna()]
    done = 0
    bar = st.progress(0.0, text="Evaluating ...")
    for i, row in enumerate(missing.itertuples(index=False)):
        sub = catalog.get(int(row.id))
        bar.progress(i / max(len(missing), 1), text=f"Evaluating {sub.name} ...")
        try:
            preds = submission_predictions(catalog, sub, data)
        except ValidationError:
            continue  # another dataset's submission: it stays without a validation score
        if not (data.dataset.image_index_of_file(preds.image_keys) >= 0).any():
            continue
        evaluate_cached(catalog, data.dataset, data.dataset_key, data.gt_label, preds, sub.sha256, 0.5)
        done += 1
    bar.empty()
    return done


def evaluations_of(catalog: Catalog, data, ids: list[int]) -> dict:
    """'#id name' -> (predictions, cached Evaluation at IoU 0.5) of each chosen submission on the
    active GT; one that cannot be read against it is an st.error and left out."""
    from core.problems import ValidationError

    out = {}
    for sub_id in ids:
        try:
            sub = catalog.get(sub_id)
            preds = submission_predictions(catalog, sub, data)
        except (CatalogError, KeyError) as exc:
            st.error(f"Submission #{sub_id} cannot be read from the catalog: {exc}")
            continue
        except ValidationError as exc:
            st.error(f"{sub.name} does not fit {data.gt_label}: {exc}")
            continue
        if not (data.dataset.image_index_of_file(preds.image_keys) >= 0).any():
            st.error(f"{sub.name}: none of its images is in {data.gt_label}; choose its ground truth in the sidebar.")
            continue
        out[f"#{sub.id} {sub.name}"] = (preds, loaders.evaluation(data.dataset, data.dataset_key, preds,
                                                                  sub.sha256, 0.5))
    return out


def submission_predictions(catalog: Catalog, sub, data):
    """A catalogued file read against the active GT, held in the loaders' bounded predictions
    cache (a rerun neither reads the store nor parses again); ValidationError when it does not fit."""
    from core.catalog.service import load_submission
    from core.problems import ValidationError

    key = (sub.sha256, data.dataset_key, f"catalog:{sub.file_name}")

    def load():
        try:
            return loaders.Loaded(load_submission(catalog, sub, data.dataset), sub.sha256)
        except ValidationError as exc:
            return loaders.Loaded(None, sub.sha256, exc.problems)
    loaded = loaders.caches()["predictions"].get_or_create(key, load)
    if loaded.value is None:
        raise ValidationError(loaded.problems)
    return loaded.value
