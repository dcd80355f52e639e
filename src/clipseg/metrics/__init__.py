"""Evaluation metrics of the CLIPSeg paper's protocols, as torchmetrics metrics that are exact under DDP.

- :class:`ReferringSegMetrics`: PhraseCut (mIoU, FG-IoU, binary IoU per threshold, AP).
- :class:`FewShotMetrics`: PASCAL-5i / COCO-20i (class mIoU, FB-IoU, AP).
- :class:`ZeroShotMetrics`: zero-shot segmentation (seen / unseen mIoU, harmonic mean).
- :class:`MattingErrors`: RefMatte (SAD, MSE, MAD, Grad, Conn).
"""

from clipseg.metrics.fewshot import FewShotMetrics
from clipseg.metrics.matting import MattingErrors
from clipseg.metrics.referring import ReferringSegMetrics
from clipseg.metrics.zeroshot import ZeroShotMetrics

__all__ = ["FewShotMetrics", "MattingErrors", "ReferringSegMetrics", "ZeroShotMetrics"]
