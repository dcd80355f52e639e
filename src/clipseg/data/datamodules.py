"""LightningDataModules for every dataset (configured from YAML by LightningCLI).

``ClipSegDataModule`` owns what all of them share (transforms, DataLoaders, batching);
``ShardDataModule`` adds parquet streaming, and each dataset module only says which shards and which
prompt policy feed a stage. Batches follow ``schema.BATCH_KEYS``.

The one-shot and zero-shot experiments train on PhraseCut+ without the held-out classes and evaluate
on the benchmark: ``FewShotDataModule`` / ``ZeroShotDataModule`` take ``phrasecut_dir`` for that and
remove the fold's classes (and synonyms) from training themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, IterableDataset

from clipseg.core.config import PreprocessConfig
from clipseg.core.prompts import TEMPLATES, VisualPromptStyle
from clipseg.data.classes import COCO_CLASSES, VOC_CLASSES, held_out_classes, voc_prompt_name
from clipseg.data.device_finish import finish_batch
from clipseg.data.shapes.dataset import ShapesDataset
from clipseg.data.shapes.scenes import ShapesConfig
from clipseg.data.streaming import PromptPolicy, ShardStream
from clipseg.data.transforms import SampleTransform, collate


class ClipSegDataModule(LightningDataModule):
    """Base: DataLoaders over per-split iterable datasets, with train/eval ``SampleTransform``.

    Args:
        image_size: model input side; every tensor of a batch is ``image_size``². The resize filter,
            mean and std are the model's: ``ClipSegModule`` hands them over (``use_model_preprocessing``)
            before the first batch; bilinear and CLIP's mean and std until then.
        batch_size: samples per batch (per rank).
        num_workers: DataLoader workers per rank (0 = in the main process); see docs/training.md for how
            many keep a GPU busy.
        prefetch_factor: batches each worker prepares ahead (with ``num_workers`` > 0).
        seed: base seed of sampling and augmentation.
        color_jitter: light photometric jitter in training.
        crop_scale: area fraction range of the random training crop (``(1, 1)`` = no crop).
        mask_interpolation: "nearest" (binary masks) or "linear" (alpha mattes).
        templates: prompt templates (default: the paper's ``prompts.TEMPLATES``); training samples
            one per sample, evaluation uses the first.
        finish_on_device: training workers send uint8 crops, resized, prompted and normalized on the
            device after the transfer (``device_finish``); ``None``: when the trainer runs on a GPU
            (on a CPU the main process would do the workers' work, so workers finish each sample).
    """

    def __init__(
        self,
        *,
        image_size: int = 352,
        batch_size: int = 32,
        num_workers: int = 2,
        prefetch_factor: int = 2,
        seed: int = 0,
        color_jitter: bool = False,
        crop_scale: tuple[float, float] = (0.3, 1.0),
        mask_interpolation: str = "nearest",
        templates: list[str] | None = None,
        finish_on_device: bool | None = None,
    ) -> None:
        super().__init__()
        self.templates = tuple(templates) if templates else TEMPLATES
        self.image_size, self.batch_size, self.num_workers, self.seed = (
            image_size,
            batch_size,
            num_workers,
            seed,
        )
        self.color_jitter, self.mask_interpolation = color_jitter, mask_interpolation
        self.prefetch_factor = prefetch_factor
        self.crop_scale = tuple(crop_scale)
        self.preprocessing = PreprocessConfig(size=image_size)
        self.prompt_style = VisualPromptStyle()  # the paper's; evaluation and inference use it too
        self.finish_on_device = finish_on_device
        self.train_first_epoch = 0

    def use_model_preprocessing(self, preprocessing: PreprocessConfig) -> None:
        """Feed the model what it will see at inference: its resize filter, mean and std.

        Raises:
            ValueError: the model's input size differs from ``image_size``.
        """
        if preprocessing.size != self.image_size:
            raise ValueError(
                f"data image_size {self.image_size} differs from the model's image_size {preprocessing.size}"
            )
        self.preprocessing = preprocessing

    def state_dict(self) -> dict[str, int]:
        """Saved in every checkpoint: the step count, from which a resumed run picks fresh train streams."""
        return {"global_step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """On resume (before the DataLoaders are built): start the train streams at epoch ``global_step``.

        The train streams are random, and a fresh DataLoader would replay the interrupted run's draws
        from their start. Epoch ``e`` cannot begin before step ``e``, so the interrupted run used epochs
        below ``global_step`` only, and the resumed one draws streams it has never seen.
        """
        self.train_first_epoch = int(state_dict.get("global_step", 0))

    def finishes_on_device(self) -> bool:
        """Whether training batches travel as crops and are finished on the device (see ``finish_on_device``)."""
        if self.finish_on_device is not None:
            return self.finish_on_device
        return self.trainer is not None and self.trainer.strategy.root_device.type != "cpu"

    def transform(self, *, train: bool) -> SampleTransform:
        """Evaluation sends floats; training too, or uint8 crops finished on the device (``finishes_on_device``)."""
        return SampleTransform(
            preprocessing=self.preprocessing,
            train=train,
            color_jitter=self.color_jitter,
            crop_scale=self.crop_scale,
            mask_interpolation=self.mask_interpolation,
            templates=self.templates,
            seed=self.seed,
            prompt_style=self.prompt_style,
            finish_on_device=train and self.finishes_on_device(),
        )

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Finish the training batch's pixels on the device the step runs on (the GPU).

        Workers send the image and prompt crops and skip the resizes, the prompts' blur and the float
        work; the step receives normalized ``B x 3 x S x S`` tensors as from an evaluation loader
        (``device_finish.finish_batch``). Batches finished in the workers pass unchanged.
        """
        return finish_batch(batch, self.preprocessing, self.prompt_style)

    def dataset(self, split: str) -> IterableDataset:
        """The transformed samples of ``split`` ("train", "val", "test")."""
        raise NotImplementedError

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
            prefetch_factor=self.prefetch_factor if self.num_workers > 0 else None,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        # `lightning predict` writes predictions for the test split.
        return self._loader("test")


class ShapesDataModule(ClipSegDataModule):
    """The procedural shapes world, generated on the fly (no files).

    Train is an infinite stream (set ``max_steps`` / ``limit_train_batches``); val and test are fixed
    sets of ``val_length`` / ``test_length`` samples.

    Args:
        scene_size: side of the generated scenes (default ``image_size``; smaller is faster).
        val_length / test_length: samples in the fixed splits.
        negative_prob / visual_prob: see ``shapes.ShapesConfig``.
        twin_prob: hard same-color scenes in the train stream (see ``shapes.ShapesConfig``); val and
            test keep the natural scenes, so their numbers stay comparable across runs.
        hard_absent_prob: share of the train stream's absent prompts that name a missing shape in a
            colour the scene has (see ``shapes.ShapesConfig``); val and test keep the natural draw.
        plain_rotation: how far the train stream's plain-look objects turn, in radians (see
            ``shapes.ShapesConfig``); val and test keep the original renderer's 0.25.
        category_labels: train batches carry ``label``, the per-pixel category map (see
            ``shapes.category_map``), for ``training.losses.FromScratchLosses``' ``dense_label_weight``.
        varied_prob: share of train scenes drawn with a varied look (backgrounds, colours, edges,
            object and canvas sizes, JPEG: ``clipseg.data.shapes.varied``); val and test stay plain.
        varied_style: ``VariedStyle`` fields other than ``prob`` for those scenes (e.g. ``rotation``,
            ``backgrounds``); ``None`` keeps the style's defaults.
        **common: ``ClipSegDataModule`` arguments (image_size, batch_size, num_workers, seed, ...).
    """

    def __init__(
        self,
        *,
        scene_size: int | None = None,
        val_length: int = 256,
        test_length: int = 256,
        negative_prob: float = 0.2,
        visual_prob: float = 0.5,
        twin_prob: float = 0.0,
        hard_absent_prob: float = 0.0,
        plain_rotation: float = 0.25,
        category_labels: bool = False,
        varied_prob: float = 0.0,
        varied_style: dict[str, Any] | None = None,
        **common,
    ) -> None:
        super().__init__(**common)
        self.varied_prob, self.varied_style = varied_prob, varied_style
        self.scene_size = scene_size or self.image_size
        self.lengths = {"train": None, "val": val_length, "test": test_length}
        self.negative_prob, self.visual_prob, self.twin_prob = negative_prob, visual_prob, twin_prob
        self.category_labels, self.hard_absent_prob = category_labels, hard_absent_prob
        self.plain_rotation = plain_rotation

    def dataset(self, stage: str) -> ShapesDataset:
        return ShapesDataset(
            split=stage,
            seed=self.seed,
            size=self.scene_size,
            length=self.lengths[stage],
            negative_prob=self.negative_prob,
            visual_prob=self.visual_prob,
            twin_prob=self.twin_prob if stage == "train" else 0.0,
            hard_absent_prob=self.hard_absent_prob if stage == "train" else 0.0,
            plain_rotation=self.plain_rotation if stage == "train" else ShapesConfig.plain_rotation,
            category_labels=self.category_labels and stage == "train",
            varied_prob=self.varied_prob if stage == "train" else 0.0,
            varied_style=self.varied_style,
            transform=self.transform(train=stage == "train"),
            first_epoch=self.train_first_epoch,  # only train streams use epochs
        )


class ShardDataModule(ClipSegDataModule):
    """Base of the modules that stream ``prepare``d parquet shards (local folder or fsspec URL).

    Subclasses implement ``stream_spec(stage) -> (source, shard split, PromptPolicy)``.

    Args:
        data_dir: folder (or URL, or pattern with ``{split}``) of the shards written by ``clipseg prepare``.
        shuffle_buffer: rows in the training shuffle buffer (evaluation streams are not shuffled).
        (other args: see ``ClipSegDataModule``)
    """

    def __init__(self, *, data_dir: str, shuffle_buffer: int = 1000, **common) -> None:
        super().__init__(**common)
        self.data_dir, self.shuffle_buffer = str(data_dir), shuffle_buffer

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        raise NotImplementedError

    def dataset(self, stage: str) -> ShardStream:
        source, split, policy = self.stream_spec(stage)
        train = stage == "train"
        return ShardStream(
            source=source,
            split=split,
            policy=policy,
            transform=self.transform(train=train),
            shuffle_buffer=self.shuffle_buffer if train else 0,
            seed=self.seed,
            train=train,
            first_epoch=self.train_first_epoch,
        )

    def phrasecut_plus(
        self, phrasecut_dir: str | None, exclude_classes: Sequence[str]
    ) -> tuple[str, str, PromptPolicy]:
        """The PhraseCut+ training stream without ``exclude_classes`` (one-/zero-shot experiments)."""
        if phrasecut_dir is None:
            raise ValueError(f"{type(self).__name__} trains on PhraseCut+: set phrasecut_dir to its shards")
        return (
            phrasecut_dir,
            "train",
            PromptPolicy(
                negative_prob=0.2,
                visual=True,
                exclude_classes=tuple(exclude_classes),
                seed=self.seed,
            ),
        )


class PhraseCutDataModule(ShardDataModule):
    """PhraseCut, or PhraseCut+ (``plus``: negatives p = 0.2, visual prompts, w ~ U(0, 0.5)) for training.

    Evaluation is text-only on ``val`` / ``test``. ``exclude_classes`` drops train and val rows whose
    phrase names one of these classes or a synonym. ``**common``: ``ShardDataModule`` arguments.
    """

    def __init__(self, *, plus: bool = False, exclude_classes: list[str] | None = None, **common) -> None:
        super().__init__(**common)
        self.plus, self.exclude_classes = plus, tuple(exclude_classes or ())

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        if stage == "train" and self.plus:
            return self.phrasecut_plus(self.data_dir, self.exclude_classes)
        exclude = self.exclude_classes if stage != "test" else ()
        return self.data_dir, stage, PromptPolicy(exclude_classes=exclude, seed=self.seed)


class FewShotDataModule(ShardDataModule):
    """PASCAL-5i / COCO-20i one-shot episodes of one fold (``clipseg prepare pascal5i --option fold=F``).

    Val and test stream the prepared ``test`` episodes (support image + mask → query mask, class ids).
    Training: PhraseCut+ without the fold's classes when ``phrasecut_dir`` is set (the paper's setup),
    else the benchmark's own ``train`` pairs. ``data_dir`` may contain ``{fold}``.

    Args:
        benchmark: "pascal5i" or "coco20i".
        fold: 0..3.
        phrasecut_dir: PhraseCut shards for training, or ``None``.
        text_weight: text share of the prompt in evaluation (0 = visual prompt only, the paper's one-shot).
        **common: ``ShardDataModule`` arguments.
    """

    def __init__(
        self,
        *,
        benchmark: str = "pascal5i",
        fold: int = 0,
        phrasecut_dir: str | None = None,
        text_weight: float = 0.0,
        **common,
    ) -> None:
        super().__init__(**common)
        self.held_out = held_out_classes(benchmark, fold)  # validates benchmark and fold
        self.benchmark, self.fold, self.phrasecut_dir, self.text_weight = (
            benchmark,
            fold,
            phrasecut_dir,
            text_weight,
        )
        self.data_dir = self.data_dir.replace("{fold}", str(fold))
        names = VOC_CLASSES if benchmark == "pascal5i" else COCO_CLASSES
        self.class_names = ["background", *names]  # indexed by class id (ids are 1-based)
        self.num_classes = len(self.class_names)

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        if stage == "train" and self.phrasecut_dir is not None:
            return self.phrasecut_plus(self.phrasecut_dir, self.held_out)
        weight = (0.0, 0.5) if stage == "train" else (self.text_weight, self.text_weight)
        policy = PromptPolicy(visual=True, text_weight_range=weight, seed=self.seed)
        return self.data_dir, "train" if stage == "train" else "test", policy


class ZeroShotDataModule(ShardDataModule):
    """PASCAL VOC zero-shot evaluation (``clipseg prepare pascal-zeroshot``), training on PhraseCut+ minus the unseen classes.

    Batches carry ``label [B,S,S]`` (VOC ids, 255 = ignore); the module evaluates with one prompt per
    class in ``class_names``.

    Args:
        n_unseen: 2, 4, 6, 8 or 10 unseen classes (cow/motorbike, aeroplane/sofa, ... pairs).
        phrasecut_dir: PhraseCut shards for training (required to fit).
        eval_split: shard split to evaluate ("val" is the protocol's).
        **common: ``ShardDataModule`` arguments.
    """

    def __init__(
        self, *, n_unseen: int = 10, phrasecut_dir: str | None = None, eval_split: str = "val", **common
    ) -> None:
        super().__init__(**common)
        self.unseen = held_out_classes(f"pascal-zeroshot-{n_unseen}")
        self.phrasecut_dir, self.eval_split = phrasecut_dir, eval_split
        self.class_names = ["background", *(voc_prompt_name(i) for i in range(1, len(VOC_CLASSES) + 1))]
        self.unseen_class_ids = sorted(VOC_CLASSES.index(name) + 1 for name in self.unseen)
        self.seen_class_ids = [i for i in range(1, len(VOC_CLASSES) + 1) if i not in self.unseen_class_ids]

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        if stage == "train":
            return self.phrasecut_plus(self.phrasecut_dir, self.unseen)
        return self.data_dir, self.eval_split, PromptPolicy(seed=self.seed)


class RefMatteDataModule(ShardDataModule):
    """RefMatte with keyword or expression prompts, or RefMatte-RW100; ``mask`` is the alpha matte.

    Expected layout: ``<data_dir>/<setting>/<split>/`` as written by
    ``clipseg prepare refmatte --out <data_dir>/<setting> --option setting=<keyword|expression>`` (and
    ``--splits rw100`` with the RW100 folder as ``--src`` for ``<data_dir>/rw100``). Evaluation reads
    ``test`` (``rw100`` for that setting); training, where prepared, ``train``. Text prompts only.

    Args:
        setting: "keyword", "expression" or "rw100".
        **common: ``ShardDataModule`` arguments (``mask_interpolation`` is fixed to "linear").
    """

    SETTINGS = ("keyword", "expression", "rw100")

    def __init__(self, *, setting: str = "expression", **common) -> None:
        if setting not in self.SETTINGS:
            raise ValueError(f"setting must be one of {self.SETTINGS}, got {setting!r}")
        super().__init__(**common, mask_interpolation="linear")
        self.setting = setting

    def stream_spec(self, stage: str) -> tuple[str, str, PromptPolicy]:
        split = "train" if stage == "train" else ("rw100" if self.setting == "rw100" else "test")
        return f"{self.data_dir.rstrip('/')}/{self.setting}", split, PromptPolicy(seed=self.seed)
