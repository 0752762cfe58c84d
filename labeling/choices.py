"""The values make-labels' choice options accept, shared by the CLI and the library (no heavy imports here)."""

SOURCES = ("suffix", "official", "check")
SPLIT_METHODS = ("auto", "folders", "official", "group", "none")
UNKNOWN_ACTIONS = ("keep", "drop", "error")
