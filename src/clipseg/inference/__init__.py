"""Inference without torch: refinement of predicted masks (``refine``, ``tiles``) and bulk masking
(``sources`` → predictor → ``postprocess`` → ``writers``, run by ``bulk``)."""
