"""The shared sidebar: data sources and thresholds. `active_data()` returns what every page uses."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.colors import class_colors
from core.data_roots import PathRefused
from core.problems import Problem
from core.folder_scan import default_ground_truth, default_predictions, scan_folder
from core.tables import Dataset, Predictions, class_name
from core.thresholds import PredictionView
from ui import loaders
from ui import state as S
from ui.loaders import Loaded, Source

NO_PREDICTIONS = "(none)"
DEFAULT_PREDICTIONS_RULE = (
    "When a ground truth is chosen, the active set becomes the first prediction file of the "
    "dataset folder, in sorted path order, whose first image_id is one of its images (else the "
    "folder's first prediction file); an uploaded or in-app set that is active stays active.")
UPLOAD_PREFIX = "uploaded: "
MAX_MESSAGES = 20


@dataclass
class RegisteredPredictions:
    """Predictions made inside the app (live inference, an ensemble), selectable like a file."""

    label: str
    predictions: Predictions
    key: str


@dataclass
class ActiveData:
    """The data every page works on. evaluation/view are None without GT boxes or predictions."""

    root: Path | None
    gt_label: str | None
    dataset: Dataset | None
    dataset_key: str
    predictions_label: str | None
    predictions: Predictions | None
    predictions_key: str
    evaluation: object | None
    view: object | None
    score_thr: float
    iou_thr: float
    score_slot: object = None  # the sidebar container the score slider is drawn in
    folder: Path | None = None  # the dataset folder (its prediction files); root is the image folder
    # the predictions at score_thr (view is its evaluated part); None without predictions
    prediction_view: PredictionView | None = None

    def at_threshold(self, score_thr: float) -> "ActiveData":
        """The same data at another score threshold (cached views: a move back costs nothing)."""
        view = None
        if self.evaluation is not None:
            view = loaders.threshold_view(self.evaluation, self.dataset_key, self.predictions_key,
                                          self.iou_thr, score_thr)
        return replace(self, score_thr=score_thr, view=view,
                       prediction_view=prediction_view(self.predictions, score_thr, self.dataset, view))

    @property
    def upright_pixels(self) -> bool:
        """The boxes are in the EXIF-upright pixel grid (a YOLO dataset): images are drawn so."""
        return self.dataset is not None and self.dataset.upright_pixels

    @property
    def has_gt_boxes(self) -> bool:
        return self.dataset is not None and len(self.dataset.annotations) > 0

    @property
    def class_names(self) -> dict[int, str]:
        return self.dataset.category_names if self.dataset is not None else {}

    @property
    def class_colors(self) -> dict[int, str]:
        ids = list(self.class_names)
        if self.predictions is not None:  # labels the GT lacks still get a colour
            labels = loaders.label_set(self.predictions_key, self.predictions)
            ids += [c for c in labels if c not in self.class_names]
        return class_colors(ids)

    def class_name(self, category_id: int) -> str:
        return class_name(self.class_names, category_id)


def register_predictions(label: str, predictions: Predictions, *, activate: bool = True) -> str:
    """Make in-memory predictions selectable as the active set on every page; returns its label."""
    S.init_state()
    registered = dict(st.session_state[S.EXTRA_PREDICTIONS])
    registered[label] = RegisteredPredictions(label, predictions, loaders.predictions_key(predictions))
    st.session_state[S.EXTRA_PREDICTIONS] = registered
    if activate:
        st.session_state[S.ACTIVE_PREDICTIONS] = label
    return label


def page_setup(title: str, icon: str = ":material/search:") -> None:
    """First call on every page: wide layout, title, session-state defaults."""
    _leave_legacy_page_mode()
    st.set_page_config(page_title=f"DetLens · {title}", page_icon=icon, layout="wide")
    S.init_state()


_ROUTER_CHECKED = "_router_checked"


def _leave_legacy_page_mode() -> None:
    """Run the app's router (app.py) when a page was opened straight by its URL on a fresh server.

    Streamlit starts in its legacy pages/ mode because pages/ exists, and leaves it only when
    a run calls st.navigation: the first request to /Dataset would run pages/4_Dataset.py
    alone (sidebar "app" + pages folded). Switching the mode off and rerunning runs app.py.
    Only a session's first run can meet that mode on a server (the switch is process-wide),
    so later runs are left alone: a rerun there would drop the click that started them.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if _ROUTER_CHECKED in st.session_state:
        return
    st.session_state[_ROUTER_CHECKED] = True
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def show_problems(problems: list[Problem], what: str, fix: str, *, loaded: bool = False) -> None:
    """The validator's messages: errors in st.error (with what to do), warnings folded away.

    loaded: the data was loaded despite its errors (scored as pycocotools would), not rejected.
    """
    errors = [p for p in problems if p.is_error]
    warnings = [p for p in problems if not p.is_error]
    if errors:
        lines = [f"- `{p}`" for p in errors[:MAX_MESSAGES]]
        if len(errors) > MAX_MESSAGES:
            lines.append(f"- ... and {len(errors) - MAX_MESSAGES} more errors")
        head = (f"{what}: {len(errors)} error(s): the competition server may reject this file; DetLens scores "
                "it as pycocotools would." if loaded else f"{what} rejected: {len(errors)} error(s).")
        st.error(f"**{head}** {fix}\n\n" + "\n".join(lines))
    if warnings:
        with st.expander(f"{what}: {len(warnings)} warning(s) (loaded anyway)"):
            st.markdown("\n".join(f"- `{p}`" for p in warnings[:200]))
            if len(warnings) > 200:
                st.caption(f"... and {len(warnings) - 200} more")


# ------------------------------------------------------------------------- upload callbacks
@dataclass(frozen=True)
class UploadedFile:
    """An upload as the session keeps it: the bytes are in the process-wide store (bounded by
    the memory budget) under sha256, so a session holds no file content."""

    name: str
    sha256: str
    size: int

    def source(self, label: str) -> Source:
        return Source(label, self.name, sha256=self.sha256)


def _keep_upload(upload) -> UploadedFile:
    data = upload.getvalue()
    kept = UploadedFile(upload.name, loaders.store_upload(data), len(data))
    _release_widget_file(upload)
    return kept


def _release_widget_file(upload) -> None:
    """Streamlit keeps a session's uploaded files while the widget lists them; the store has
    the bytes now, so they are not held twice (the widget then reads as empty)."""
    ctx = get_script_run_ctx()
    try:
        ctx.uploaded_file_mgr.remove_file(ctx.session_id, upload.file_id)
    except AttributeError:  # no session (bare run) or a Streamlit without this manager API
        pass


def _is_file(upload) -> bool:
    # a file released by _release_widget_file reads back as Streamlit's DeletedFile (no bytes)
    return hasattr(upload, "getvalue")


def _on_gt_upload() -> None:
    upload = st.session_state.get("_upload_gt")
    if not _is_file(upload):
        return
    label = UPLOAD_PREFIX + upload.name
    uploaded = dict(st.session_state[S.UPLOADED_GT])
    uploaded[label] = _keep_upload(upload)
    st.session_state[S.UPLOADED_GT] = uploaded
    st.session_state[S.GT_CHOICE] = label


def _on_predictions_upload() -> None:
    uploads = st.session_state.get("_upload_predictions") or []
    uploaded = dict(st.session_state[S.UPLOADED_PREDICTIONS])
    for upload in filter(_is_file, uploads):
        label = UPLOAD_PREFIX + upload.name
        uploaded[label] = _keep_upload(upload)
        st.session_state[S.ACTIVE_PREDICTIONS] = label
    st.session_state[S.UPLOADED_PREDICTIONS] = uploaded


def _on_folder_change() -> None:
    S._store(S.DATA_DIR)
    for key in (S.GT_CHOICE, S.ACTIVE_PREDICTIONS, S.PREDICTIONS_FOR_GT, S.EXPLORER_IMAGE,
                S.ERRORS_CLASS):
        st.session_state[key] = None
    st.session_state[S.EXPLORER_CLASSES] = []


def _use_sample_data() -> None:
    st.session_state[S.widget_key(S.DATA_DIR)] = str(S.SAMPLE_DIR)
    _on_folder_change()


def _drop_uploads() -> None:
    st.session_state[S.UPLOADED_GT] = {}
    st.session_state[S.UPLOADED_PREDICTIONS] = {}


# --------------------------------------------------------------------------- the sidebar
def _dataset_section(messages: list) -> tuple[Path | None, str | None, Source | None]:
    st.sidebar.text_input(
        "Dataset folder", help="A folder with a COCO json (e.g. train.json), the image folders "
        "(train/, test/) and prediction files; or a YOLO dataset (data.yaml, or images/ and labels/) "
        "or a Pascal VOC one (Annotations/, JPEGImages/). Also: `streamlit run app.py -- --data DIR`.",
        **{**S.bind(S.DATA_DIR), "on_change": _on_folder_change, "args": ()})
    st.sidebar.button("Use the sample data", key="_use_sample", on_click=_use_sample_data)
    scan = scan_folder(st.session_state[S.DATA_DIR] or ".", roots=S.data_roots())
    if scan.problem:
        messages.append(("error", f"Dataset folder: {scan.problem}. Type an existing folder, or "
                                  "press 'Use the sample data'."))
    messages += [("warning", f"Dataset folder: {notice}.") for notice in scan.notices]
    root = None if scan.problem else scan.root
    st.sidebar.file_uploader(
        "Upload a ground truth (COCO json)", type=["json"], key="_upload_gt",
        on_change=_on_gt_upload, help="Its images come from the folder you choose for it below "
        "the ground-truth choice, never silently from the dataset folder.")
    uploaded = st.session_state[S.UPLOADED_GT]
    options = list(scan.ground_truths) + list(uploaded)
    if st.session_state[S.GT_CHOICE] not in options:
        st.session_state[S.GT_CHOICE] = default_ground_truth(scan.ground_truths) or (
            options[0] if options else None)
    if not options:
        if root is not None:
            messages.append(("warning", f"No COCO ground-truth json in {root}: add a train.json "
                                        "there or upload one."))
        return root, None, None
    choice = st.sidebar.selectbox("Ground truth", options, **S.bind(S.GT_CHOICE, options))
    if choice in uploaded:
        source = uploaded[choice].source(choice)
        if not source.available:
            messages.append(("warning", loaders.dropped_upload_message(source.name)))
            return root, choice, None
        return root, choice, source
    return root, choice, Source(choice, choice, path=root / choice)


def _store_image_folder(gt_label: str) -> None:
    folders = dict(st.session_state[S.UPLOAD_IMAGE_DIRS])
    folders[gt_label] = st.session_state["_upload_image_dir"]
    st.session_state[S.UPLOAD_IMAGE_DIRS] = folders


def _image_folder(root: Path | None, gt_label: str | None, messages: list) -> Path | None:
    """The folder the chosen ground truth's images come from: the dataset folder for its own
    files; for an uploaded json, the folder typed for that upload (none: blank canvases)."""
    if gt_label is None or gt_label not in st.session_state[S.UPLOADED_GT]:
        return root
    st.session_state["_upload_image_dir"] = st.session_state[S.UPLOAD_IMAGE_DIRS].get(gt_label, "")
    typed = st.sidebar.text_input(
        f"Image folder for {gt_label}", key="_upload_image_dir", on_change=_store_image_folder,
        args=(gt_label,), placeholder="folder its file_names are relative to",
        help="Where this uploaded ground truth's images are (absolute, or relative to the "
             "dataset folder). Empty: its images are drawn as blank canvases.").strip()
    if not typed:
        messages.append(("warning", f"No image folder chosen for {gt_label}: its images are "
                                    "drawn as blank canvases. Type the folder its file_names are "
                                    "relative to under 'Ground truth' in the sidebar."))
        return None
    folder = Path(typed).expanduser()
    if not folder.is_absolute() and root is not None:
        folder = root / folder
    try:
        folder = S.data_roots().check(folder)
        usable = folder.is_dir()
    except PathRefused as exc:
        messages.append(("error", f"Image folder for {gt_label}: {exc}"))
        return None
    except OSError:  # e.g. a parent folder that cannot be searched
        usable = False
    if not usable:
        messages.append(("error", f"Image folder for {gt_label}: {typed} is not a folder that can "
                                  "be read; type an existing folder (or leave it empty)."))
        return None
    return folder


def prediction_options(root: Path | None) -> dict[str, Source | RegisteredPredictions]:
    """Every prediction set on offer, label -> where it comes from: the dataset folder's files
    (sorted), then uploads, then in-app sets (ensembles, live inference)."""
    options: dict[str, Source | RegisteredPredictions] = {}
    if root is not None:
        scan = scan_folder(root, roots=S.data_roots())  # its notices were shown by _dataset_section
        if not scan.problem:
            options.update({name: Source(name, name, path=Path(root) / name) for name in scan.predictions})
    for label, upload in st.session_state[S.UPLOADED_PREDICTIONS].items():
        options[label] = upload.source(label)
    options.update(st.session_state[S.EXTRA_PREDICTIONS])
    return options


def _default_predictions(root: Path | None, options: dict, dataset: Dataset | None) -> str:
    """The set a newly chosen ground truth opens with (DEFAULT_PREDICTIONS_RULE)."""
    found = [label for label, option in options.items()
             if isinstance(option, Source) and option.path is not None]
    if root is None or not found:
        return NO_PREDICTIONS
    file_names = dataset.images["file_name"] if dataset is not None else []
    return default_predictions(root, found, file_names, roots=S.data_roots()) or NO_PREDICTIONS


def _predictions_section(root: Path | None, gt_label: str | None, dataset: Dataset | None
                         ) -> Source | RegisteredPredictions | None:
    st.sidebar.file_uploader(
        "Upload predictions (submission CSV, COCO results or Ultralytics json)", type=["csv", "json"],
        accept_multiple_files=True, key="_upload_predictions", on_change=_on_predictions_upload)
    options = prediction_options(root)
    if st.session_state[S.PREDICTIONS_FOR_GT] != gt_label:  # new GT: pick a file that fits it
        active = options.get(st.session_state[S.ACTIVE_PREDICTIONS])
        if not (isinstance(active, RegisteredPredictions) or (isinstance(active, Source) and active.sha256)):
            st.session_state[S.ACTIVE_PREDICTIONS] = _default_predictions(root, options, dataset)
        st.session_state[S.PREDICTIONS_FOR_GT] = gt_label
    labels = [NO_PREDICTIONS] + list(options)
    choice = st.sidebar.selectbox("Active predictions", labels, help=DEFAULT_PREDICTIONS_RULE,
                                  **S.bind(S.ACTIVE_PREDICTIONS, labels))
    if len(st.session_state[S.UPLOADED_PREDICTIONS]):
        st.sidebar.button("Forget uploaded files", key="_drop_uploads", on_click=_drop_uploads)
    return None if choice == NO_PREDICTIONS else options[choice]


def _score_slider() -> float:
    st.slider("Score threshold", 0.0, 1.0, step=0.01, format="%.2f",
              help="Predictions below it are ignored on every page. 0.05 is the baselines' "
                   "value. Moving it never re-runs matching.", **S.bind(S.SCORE_THR))
    return float(st.session_state[S.SCORE_THR])


def _iou_slider() -> float:
    st.sidebar.slider("IoU threshold", 0.05, 0.95, step=0.05, format="%.2f",
                      help="IoU needed for a prediction to match a ground truth (0.5 = the "
                           "competition's mAP@0.5). A change re-evaluates once, then is cached.",
                      **S.bind(S.IOU_THR))
    return float(st.session_state[S.IOU_THR])


def score_slider(data: ActiveData) -> ActiveData:
    """Draw the shared score slider from inside the calling fragment; returns data at its value.

    For a page made with `active_data(score_slider_in_fragment=True)`: a slider drawn by a
    fragment (into its sidebar slot) reruns only that fragment (st.fragment docs), so the
    sidebar and everything above stay as they are. Everything the threshold changes must be
    drawn by that fragment, after this call.
    """
    with data.score_slot:
        score_thr = _score_slider()
    return data if score_thr == data.score_thr else data.at_threshold(score_thr)


def prediction_view(predictions: Predictions | None, score_thr: float, dataset: Dataset | None,
                    evaluated=None) -> PredictionView | None:
    """`predictions` at score_thr on `dataset` (evaluated: their ThresholdView there), or None."""
    if predictions is None:
        return None
    return PredictionView(predictions, score_thr, dataset, evaluated)


def active_data(*, score_slider_in_fragment: bool = False) -> ActiveData:
    """Draw the sidebar (data sources, thresholds) and return the active data; never raises.

    score_slider_in_fragment: leave the score slider's slot empty for the page's fragment to
    fill with `score_slider(data)`, so that a slider move reruns only that fragment.
    """
    messages: list[tuple[str, str]] = []
    if loaders.BUDGET.problem:  # a mistyped DETLENS_MEMORY_BUDGET_MB: the default is used
        messages.append(("warning", loaders.BUDGET.problem))
    st.sidebar.header("Data")
    root, gt_label, gt_source = _dataset_section(messages)
    image_root = _image_folder(root, gt_label, messages)
    dataset, dataset_key, gt_loaded = None, "", None
    if gt_source is not None:
        gt_loaded = loaders.load_dataset(gt_source, image_root)
        dataset, dataset_key = gt_loaded.value, gt_loaded.key
        if dataset is not None and image_root is not None and loaders.is_dataset_folder(gt_source.path):
            image_root = dataset.root  # YOLO images/, VOC JPEGImages/: where the format puts them
    pred_source = _predictions_section(root, gt_label, dataset) if dataset is not None else None
    st.sidebar.header("Thresholds")
    score_slot = st.sidebar.container()
    if score_slider_in_fragment:
        score_thr = float(st.session_state[S.SCORE_THR])
    else:
        with score_slot:
            score_thr = _score_slider()
    iou_thr = _iou_slider()

    for kind, text in messages:
        (st.error if kind == "error" else st.warning)(text)
    if gt_loaded is not None:
        show_problems(gt_loaded.problems, f"Ground truth {gt_source.name}",
                      "Fix the json (or pick another ground truth in the sidebar).",
                      loaded=gt_loaded.value is not None)

    predictions, pred_key, pred_label = None, "", None
    if isinstance(pred_source, RegisteredPredictions):
        predictions, pred_key, pred_label = pred_source.predictions, pred_source.key, pred_source.label
    elif pred_source is not None and not pred_source.available:
        st.warning(loaders.dropped_upload_message(pred_source.name))
    elif pred_source is not None:
        loaded: Loaded = loaders.load_predictions(pred_source, dataset, dataset_key)
        show_problems(loaded.problems, f"Predictions {pred_source.name}",
                      "Fix the listed lines (the CLI `python -m core validate FILE --gt GT.json` "
                      "prints the same list), or pick another file in the sidebar.",
                      loaded=loaded.value is not None)
        predictions, pred_key, pred_label = loaded.value, loaded.key, pred_source.label

    evaluation = view = None
    if (dataset is not None and predictions is not None and len(dataset.annotations) > 0
            and (dataset.image_index_of_file(predictions.image_keys) >= 0).any()):
        try:
            evaluation = loaders.evaluation(dataset, dataset_key, predictions, pred_key, iou_thr)
            view = loaders.threshold_view(evaluation, dataset_key, pred_key, iou_thr, score_thr)
        except Exception as exc:  # noqa: BLE001 - the page must keep working, with the reason shown
            st.error(f"Evaluating {pred_label} failed: {type(exc).__name__}: {exc}")
            evaluation = view = None
    if isinstance(pred_source, Source) and predictions is not None:  # the submission catalog (issue 14)
        from ui.catalog import note_loaded  # a store failure is a sidebar message, never an exception
        note_loaded(pred_source, loaded, dataset_key, gt_label, evaluation, iou_thr)
    data = ActiveData(image_root, gt_label, dataset, dataset_key, pred_label, predictions, pred_key,
                      evaluation, view, score_thr, iou_thr, score_slot, folder=root,
                      prediction_view=prediction_view(predictions, score_thr, dataset, view))
    _summary(data)
    return data


def _summary(data: ActiveData) -> None:
    if data.dataset is None:
        return
    ds = data.dataset
    text = (f"**{len(ds.images):,}** images · **{len(ds.annotations):,}** boxes · "
            f"**{len(ds.categories)}** classes")
    if data.predictions is not None:
        text += f"  \n**{len(data.predictions):,}** predicted boxes in {data.predictions_label}"
    st.sidebar.caption(text)
