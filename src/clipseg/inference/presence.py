"""Presence: the probability that a prompt's object is in the image.

A raw maximum probability is a poor yes/no (one confident pixel says "present"), so presence is a
logistic regression on a few features of the ``H x W`` map (``presence_features``) and, where the
backend gives it, the decoder's pooled summary of the prompt (the head: it tells a painted "red
square" from the red circle that was painted for it), fitted on validation scenes
(``fit_calibration``) and stored in the model file's metadata under ``PRESENCE_META`` as JSON. A
model without it falls back to the maximum probability.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from clipseg.inference.postprocess import PostProcess, remove_negatives

PRESENCE_META = "clipseg_presence"
FEATURES = ("logit_max", "logit_top_mean", "area_above_half")
# Fraction of the image averaged by the top-k feature: a few objects' worth of pixels, not one pixel.
TOP_FRACTION = 0.002
_EPS = 1e-6
# The head's extra features: ``ClipSegDecoder``'s pooled tokens (region mean, mean, max; 3R values).
HEAD_FEATURES = "decoder_pooled"


def presence_features(probs: np.ndarray) -> np.ndarray:
    """``N x 3`` float64 features of ``N x H x W`` probabilities (``FEATURES``, in that order)."""
    flat = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1)
    k = max(1, round(TOP_FRACTION * flat.shape[1]))
    top = np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:]
    clip = lambda x: np.clip(x, _EPS, 1 - _EPS)  # noqa: E731 - logit of 0 / 1 is infinite
    return np.stack(
        [logit(clip(flat.max(axis=1))), logit(clip(top.mean(axis=1))), (flat >= 0.5).mean(axis=1)], axis=1
    )


@dataclass(frozen=True)
class Logistic:
    """``sigmoid(standardised features @ weights + bias)``, features standardised by ``mean``/``scale``."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``M`` probabilities of ``M x F`` features."""
        if x.shape[1] != len(self.weights):
            raise ValueError(
                f"presence: {x.shape[1]} features, the calibration was fitted on {len(self.weights)}"
            )
        return expit((x - np.array(self.mean)) / np.array(self.scale) @ np.array(self.weights) + self.bias)

    def to_dict(self) -> dict:
        return {
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Logistic:
        return cls(tuple(data["weights"]), float(data["bias"]), tuple(data["mean"]), tuple(data["scale"]))


@dataclass(frozen=True)
class Calibration:
    """Presence from a ``base`` logistic on the map's ``FEATURES``; with ``head``, a logistic on those
    features followed by the decoder's pooled summary of the prompt (``ClipSegDecoder.forward(pooled=True)``),
    used wherever a backend gives it.

    The map-only ``base`` stays as the fallback for backends without the pooled output (ONNX exports
    made before it), stored at the JSON's top level where versions without heads read it.
    """

    base: Logistic
    head: Logistic | None = None

    def __call__(self, probs: np.ndarray, pooled: np.ndarray | None = None) -> np.ndarray:
        """``N`` float presences in [0, 1] for ``N x H x W`` probabilities (and ``N x 3R`` pooled)."""
        features = presence_features(probs)
        if self.head is not None and pooled is not None:
            return self.head(np.hstack([features, np.asarray(pooled, dtype=np.float64)]))
        return self.base(features)

    def to_json(self) -> str:
        data = {"features": list(FEATURES), **self.base.to_dict()}
        if self.head is not None:
            data["head"] = {"features": [*FEATURES, HEAD_FEATURES], **self.head.to_dict()}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        if data.get("features") != list(FEATURES):
            raise ValueError(f"presence calibration for features {data.get('features')}, expected {FEATURES}")
        head = data.get("head")
        if head is not None and head.get("features") != [*FEATURES, HEAD_FEATURES]:
            raise ValueError(
                f"presence head for features {head.get('features')}, expected {FEATURES} + {HEAD_FEATURES}"
            )
        return cls(Logistic.from_dict(data), None if head is None else Logistic.from_dict(head))


def read_calibration(metadata: Mapping[str, str] | None) -> Calibration | None:
    """The calibration stored in a model file's metadata, or None."""
    text = (metadata or {}).get(PRESENCE_META)
    return None if text is None else Calibration.from_json(text)


# L2 on the standardised weights. The two logit features are nearly collinear: unshrunk (1e-3), the fit
# set them to large opposite weights that misjudge maps whose maximum sits at the clip (p = 1). On
# validation scenes (seeds 7001, 7004) AUROC is flat from 1 to 10 and the ECE lowest at 3-10 (it
# doubles at 30): 3, a step from that edge.
L2 = 3.0


def fit_logistic(x: np.ndarray, present: np.ndarray, *, l2: float = L2) -> Logistic:
    """Logistic regression (Newton's method, L2 ``l2`` on the standardised weights) of ``M`` booleans on
    ``M x F`` features."""
    y = np.asarray(present, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("presence calibration needs both present and absent examples")
    mean, scale = x.mean(axis=0), x.std(axis=0) + _EPS
    design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = l2 * np.eye(len(theta))
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(100):
        p = expit(design @ theta)
        gradient = design.T @ (p - y) + penalty @ theta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(tuple(theta[:-1].tolist()), float(theta[-1]), tuple(mean.tolist()), tuple(scale.tolist()))


def fit_calibration(
    probs: list[np.ndarray],
    present: list[bool],
    *,
    pooled: list[np.ndarray] | None = None,
    l2: float = L2,
) -> Calibration:
    """The map-only logistic of ``present`` on each ``H x W`` map's features and, given each map's
    ``3R`` decoder summary in ``pooled``, the head on both."""
    x = np.concatenate([presence_features(p[None]) for p in probs])
    base = fit_logistic(x, np.asarray(present), l2=l2)
    head = None
    if pooled is not None:
        head = fit_logistic(np.hstack([x, np.stack(pooled).astype(np.float64)]), np.asarray(present), l2=l2)
    return Calibration(base, head)


def presence(
    probs: np.ndarray, calibration: Calibration | None, pooled: np.ndarray | None = None
) -> np.ndarray:
    """``N`` float presences for ``N x H x W`` probabilities (and the decoder's ``N x 3R`` summary of
    each prompt where the backend gives one): calibrated, else the maximum probability."""
    if calibration is None:
        return np.asarray(probs, dtype=np.float64).reshape(len(probs), -1).max(axis=1)
    return calibration(probs, pooled)


def prompt_presence(
    probs: np.ndarray,
    negatives: np.ndarray | None,
    options: PostProcess,
    calibration: Calibration | None,
    pooled: np.ndarray | None = None,
) -> np.ndarray:
    """``K`` presences as every path reports them (``Predictor.segment``, bulk masking, the API, the web
    page's table): ``presence`` of the ``N x H x W`` prompt probabilities, soft, with the pixels where
    an ``M x H x W`` negative reaches the post-processing's cut (``options.cut``, where ``postprocess``
    removes them) zeroed (``pooled``: the prompts' ``N x 3R`` decoder summary, for a presence
    head); ``K`` = 1, the highest, when ``options`` combines the prompts."""
    kept = probs if negatives is None else remove_negatives(probs, negatives, options.cut)
    found = presence(kept, calibration, pooled)
    return found.max(keepdims=True) if options.combine != "none" else found
