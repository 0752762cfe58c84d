"""cnn.data.loader: see docs/architecture.md."""
