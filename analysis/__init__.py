"""Per-layer FLOPs and receptive-field computation for Keras models, and their reports."""
