"""The submission catalog: a store of every submission and its results (store), paired
bootstrap of mAP@0.5 differences (bootstrap), forward ensemble selection (selection)."""
