"""cnn.audit: duplicates and leaks across splits, odd images, likely label errors; see docs/audit.md."""
