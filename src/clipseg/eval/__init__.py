"""Evaluation: shapes and refine quality, the paper's benchmarks, ``eval-all`` and its report."""
