"""Inference without torch: refinement of predicted masks (see ``refine`` and ``tiles``)."""
