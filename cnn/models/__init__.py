"""cnn.models.architectures: see docs/architecture.md."""
