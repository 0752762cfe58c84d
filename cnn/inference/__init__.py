"""cnn.inference: see docs/architecture.md."""
