"""A finished run that predicts: open_run(path) -> Predictor (cnn.runs.predictor), for a flat run, a hierarchical
run, a --repeats ensemble or an export, with its calibration and TTA."""
