"""cnn.experiments: see docs/architecture.md."""
