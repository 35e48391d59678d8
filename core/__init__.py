"""DetLens core: loading, validation, evaluation, drawing, inference and ensembling.

Pure Python (numpy/pandas); never imports streamlit. One box format inside: absolute-pixel
xyxy floats. COCO xywh (ground truth, results json) and VOC xyxy (submission CSV) are
converted only at the edges.
"""
