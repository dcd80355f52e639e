"""The procedural shapes worlds: ``scenes`` (the base world), ``varied`` (its backgrounds and finish),
``hires`` (512² anti-aliased scenes), ``shift`` (a shifted world for fine-tuning) and ``dataset``."""
