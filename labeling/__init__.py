"""make-labels: scan a folder tree of clothing photos, derive labels and splits, write the labels CSV."""
