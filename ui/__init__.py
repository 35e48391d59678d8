"""Streamlit glue shared by app.py and every page (core/ never imports it).

How a page uses it::

    from ui.sidebar import active_data, page_setup
    page_setup("My page", "🔧")      # first call: wide layout + session-state defaults
    data = active_data()              # draws the shared sidebar, returns ActiveData:
    #   data.dataset / data.dataset_key       the ground truth (core.tables.Dataset) or None
    #   data.predictions / data.predictions_key / data.predictions_label   the active set or None
    #   data.evaluation / data.view           cached Evaluation and ev.at(score_thr), or None
    #   data.prediction_view                  core.thresholds.PredictionView: the active set at
    #                                         score_thr (with or without GT), or None
    #   data.score_thr / data.iou_thr         the shared thresholds (sidebar sliders)
    #   data.root                             dataset folder images resolve in (None: none)
    #   data.class_names / data.class_colors / data.class_name(id)

Modules:
- `ui.state`: every session-state key (SCORE_THR, IOU_THR, EXPLORER_IMAGE, ...) and `bind(KEY)`,
  the kwargs that make a widget edit a canonical key and survive page switches.
- `ui.sidebar`: `page_setup`, `active_data`, `show_problems(problems, what, fix, loaded=...)` (validator
  messages as st.error), and `register_predictions(label, predictions, activate=True)`: put
  in-memory `Predictions` (a live-inference result, an ensemble) into the session so they are
  selectable as the active set on every page (evaluated and cached like a file).
- `ui.loaders`: content-keyed caches: `load_dataset`, `load_predictions`, `evaluation`,
  `threshold_view`, `image_ref(root, file_name, size)` (a drawable image, or a blank canvas
  with a notice when missing/outside the root), `pil_image`.
- `ui.widgets`: `draw_image_panels(image_ref, [Panel, ...], key=...)`: N side-by-side panels of
  one image with synchronised zoom/pan (GT | predictions, or GT | A | B); build each Panel's
  layers with `core.drawing.gt_layers` / `prediction_layers` (colour by outcome or class), or use
  `image_panels(data, gts, dets, ...)` for the standard pair and `boxes_of(data, key, index)`
  for one image's (predictions, GT) rows; `outcome_legend`, `need_evaluation(data)`.
- `ui.image_panels.draw_figure`: the panels' chart, a component (index.html beside it) that keeps
  one plotly chart and updates it in place, keeping the zoom while the image stays the same.
- `ui.charts.plotly_chart(figure, key=, on_select=)`: every other chart (never st.plotly_chart): a
  component (chart.js beside it) that redraws in place and returns clicks as selection events.
- `ui.prediction_sets.set_view(data, chosen)`: another set's PredictionView (Compare, agreement).
The score threshold slider is part of the sidebar: read `data.score_thr`, never draw another; the
cut itself is core.thresholds' (`data.prediction_view.keep`, `.kept`, `.image_boxes`, ...).
"""
