"""Model runtimes behind ``clipseg.inference.Backend``: ``torch`` (the only inference module importing torch)."""
