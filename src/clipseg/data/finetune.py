"""``FineTuneDataModule``: users' own data, as ``clipseg prepare folder|coco`` wrote it, for ``configs/finetune.yaml``.

Training follows PhraseCut+ (paper Sec. 4): some prompts are swapped for another image's (a negative:
the target becomes empty), and some samples are prompted by a support image of the same phrase from
another image (a visual prompt mixed with the text, w ~ U(0, 0.5)). Validation streams the ``val``
split with its own text prompts.

Input size and normalization are the model's: left unset, they are read from the module being
trained when the trainer sets the module up (``use_model_preprocessing``), so that a user names the model once (``--model.init_from``).
"""

from __future__ import annotations

from typing import Any

from clipseg.core.config import PreprocessConfig
from clipseg.data.datamodules import ShardDataModule
from clipseg.data.streaming import PromptPolicy

# The prompt as typed comes first: evaluation (and `clipseg predict`) use the first template.
FINETUNE_TEMPLATES = ("{}", "{}.", "a photo of a {}.")


class FineTuneDataModule(ShardDataModule):
    """The ``train`` / ``val`` shards of ``clipseg prepare folder`` or ``clipseg prepare coco``.

    Args:
        data_dir: the ``--out`` folder of ``clipseg prepare folder|coco``.
        negative_prob: share of training samples whose prompt is another image's phrase (empty target),
            which teaches the model to mark nothing for an absent object.
        visual_prob: share of training samples prompted (partly) by a support image of the same phrase.
        image_size: model input side; ``None`` takes the trained model's (``config.image_size``).
        templates: prompt templates (default ``FINETUNE_TEMPLATES``: the phrase as typed first).
        **common: ``ShardDataModule`` arguments (batch_size, num_workers, crop_scale, seed, ...).
    """

    def __init__(
        self,
        *,
        negative_prob: float = 0.2,
        visual_prob: float = 0.3,
        image_size: int | None = None,
        templates: list[str] | None = None,
        **common: Any,
    ) -> None:
        for name, value in (("negative_prob", negative_prob), ("visual_prob", visual_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        super().__init__(
            image_size=image_size or 352, templates=list(templates or FINETUNE_TEMPLATES), **common
        )
        self.size_from_model = image_size is None
        self.negative_prob, self.visual_prob = negative_prob, visual_prob

    def use_model_preprocessing(self, preprocessing: PreprocessConfig) -> None:
        """The model's resize filter, mean and std, and its input size when ``image_size`` was left unset."""
        if self.size_from_model:
            self.image_size = preprocessing.size
        super().use_model_preprocessing(preprocessing)

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        if stage != "train":
            return self.data_dir, "val", PromptPolicy(seed=self.seed)
        policy = PromptPolicy(
            negative_prob=self.negative_prob,
            visual=self.visual_prob > 0,
            visual_prob=self.visual_prob,
            same_phrase_support=True,
            seed=self.seed,
        )
        return self.data_dir, "train", policy
