"""cnn.evaluation: see docs/architecture.md."""
