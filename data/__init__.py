"""The embedded sample-data generator (python -m data.make_sample)."""
