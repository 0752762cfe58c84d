"""cnn.training: see docs/architecture.md."""
