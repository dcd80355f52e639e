"""The driver's side of a bulk run, whichever engine masks: plan, record outcomes, finish.

``BulkRun.plan`` collects the inputs, builds the ``Layout`` (names, formats, the options stamp),
refuses inputs that would write the same file, clears what a killed run left half-written and
keeps the inputs whose outputs are not complete (resume-skip). ``run(engine.outcomes)`` hands those
to an engine (``BulkMasker.outcomes`` in this process, or ``clipseg.ray.RayEngine.outcomes`` on Ray
actors), which masks and writes them through ``inference.writers`` and hands back one ``Outcome``
per input; ``record`` counts it, reports a failure by name and moves
the progress bar; ``finish`` assembles the COCO file and the labels legend and returns the summary,
its entries in input order so that every engine gives the same summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from clipseg.core.prompts import as_prompt
from clipseg.inference.postprocess import PostProcess
from clipseg.inference.sources import Input, SourceError, collect_inputs
from clipseg.inference.stamps import run_stamp
from clipseg.inference.writers import Layout, assemble_coco, remove_partials, write_legend


@dataclass(frozen=True, kw_only=True)
class MaskOptions:
    """What a bulk run does to each input besides the model and the prompts.

    ``postprocess`` (threshold included), ``refine``, ``tiles``, ``smooth`` and ``min_presence``
    decide the masks' pixels and go into every output's stamp; ``batch_size`` (images per model
    call) and ``workers`` (decode and write threads) only decide the speed.
    """

    postprocess: PostProcess = field(default_factory=PostProcess)
    refine: str = "none"
    tiles: bool = False
    smooth: int = 0
    min_presence: float = 0.0
    batch_size: int = 8
    workers: int = 2

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.min_presence <= 1.0:
            raise ValueError(f"min presence {self.min_presence}: a presence is in [0, 1]")

    def stamp(self, model: str, prompts: Sequence[object]) -> str:
        """The run stamp (``stamps.run_stamp``) of ``model`` and ``prompts`` with these options."""
        return run_stamp(
            model,
            prompts,
            self.postprocess,
            refine=self.refine,
            tiles=self.tiles,
            smooth=self.smooth,
            min_presence=self.min_presence,
        )


@dataclass(frozen=True)
class Outcome:
    """How one input ended: its summary entry (an item of ``clipseg predict --json``), or the error."""

    input: Input
    entry: dict | None = None
    error: str | None = None


@dataclass
class BulkSummary:
    """What a bulk run did; ``entries`` describe the inputs masked in this run, in input order."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    coco: Path | None = None
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return (
            f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)} "
            f"({self.seconds:.1f} s, {rate:.2f} inputs/s)"
        )


def gather_inputs(sources: Sequence[str | Path] | str | Path, exclude: Path | None = None) -> list[Input]:
    """``collect_inputs`` of one source or a sequence of them."""
    return collect_inputs([sources] if isinstance(sources, (str, Path)) else sources, exclude=exclude)


class BulkRun:
    """One run into ``layout``: ``todo`` are the inputs left to mask; ``run`` does it (or, by hand:
    ``with run:`` draws the progress bar, then ``record`` each outcome and ``finish``)."""

    def __init__(
        self,
        layout: Layout,
        inputs: list[Input],
        todo: list[Input],
        *,
        on_error: Callable[[Path, str], None] | None,
        progress: bool | None,
    ) -> None:
        self.layout, self.inputs, self.todo = layout, inputs, todo
        self.summary = BulkSummary(skipped=len(inputs) - len(todo))
        self._start = time.perf_counter()
        self._order = {item: i for i, item in enumerate(inputs)}
        self._done: list[Outcome] = []
        self._report = on_error or (lambda path, message: tqdm.write(f"error: {message}", file=sys.stderr))
        self._progress = progress
        self._bar: tqdm | None = None  # drawn from ``__enter__``: planning may end in an error first

    @classmethod
    def plan(
        cls,
        model: str,
        prompts: Sequence[object],
        options: MaskOptions,
        sources: Sequence[str | Path] | str | Path,
        *,
        out: str | Path,
        formats: Sequence[str] = ("png", "overlay"),
        overwrite: bool = False,
        video_output: str = "frames",
        progress: bool | None = None,
        on_error: Callable[[Path, str], None] | None = None,
    ) -> BulkRun:
        """The run of ``sources`` into ``out`` (layout and names: ``inference.writers``) for ``model``
        (its name, for the stamp) and ``prompts``; inputs whose outputs are complete with the same
        stamp are skipped unless ``overwrite``. Raises ``SourceError`` if two inputs would write
        the same file."""
        root = Path(out)
        inputs = gather_inputs(sources, exclude=root)
        labels = options.postprocess.labels([as_prompt(p).label for p in prompts])
        layout = Layout(
            root=root,
            labels=tuple(labels),
            formats=tuple(formats),
            video_output=video_output,
            cut=options.postprocess.cut,
            stamp=options.stamp(model, prompts),
        )
        _refuse_collisions(layout, inputs)
        remove_partials(root)
        todo = [item for item in inputs if overwrite or not layout.is_complete(item)]
        return cls(layout, inputs, todo, on_error=on_error, progress=progress)

    def run(self, outcomes: Callable[[Layout, list[Input]], Iterable[Outcome]]) -> BulkSummary:
        """Record every outcome of an engine's ``outcomes(layout, todo)`` and finish: the whole run."""
        with self:
            for outcome in outcomes(self.layout, self.todo):
                self.record(outcome)
            return self.finish()

    def record(self, outcome: Outcome) -> None:
        """Count ``outcome``; a failure is reported (``on_error``) at once."""
        if outcome.error is not None:
            self._report(outcome.input.path, outcome.error)
        self._done.append(outcome)
        if self._bar is not None:
            self._bar.update(1)

    def finish(self) -> BulkSummary:
        """Assemble ``coco.json`` / ``instances.json`` and the labels legend; the summary."""
        remove_partials(self.layout.root)  # a worker killed mid-write (and retried) leaves its partial files
        outcomes = sorted(self._done, key=lambda o: self._order[o.input])
        failed = {o.input for o in outcomes if o.error is not None}
        summary = self.summary
        summary.failed = [(str(o.input.path), o.error) for o in outcomes if o.error is not None]
        summary.entries = [o.entry for o in outcomes if o.entry is not None]
        summary.done = len(outcomes) - len(failed)
        ok = [item for item in self.inputs if item not in failed]
        if self.layout.coco_file and ok:
            labels = list(self.layout.labels)
            summary.coco = assemble_coco(self.layout, ok, {"description": "clipseg masks", "prompts": labels})
        if "labels" in self.layout.formats:
            write_legend(self.layout)
        summary.seconds = time.perf_counter() - self._start
        return summary

    def __enter__(self) -> BulkRun:
        disable = None if self._progress is None else not self._progress  # None: on a terminal only
        self._bar = tqdm(total=len(self.todo), unit="input", disable=disable, file=sys.stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _refuse_collisions(layout: Layout, inputs: Sequence[Input]) -> None:
    """Raise ``SourceError`` if two image inputs would write the same file (e.g. ``a`` and ``a_0``)."""
    owner: dict[Path, Path] = {}
    for item in inputs:
        if item.is_video:
            continue
        for path in layout.image_files(item):
            if path in owner:
                raise SourceError(
                    f"{owner[path]} and {item.path} would both write {path}: rename one of them"
                )
            owner[path] = item.path
