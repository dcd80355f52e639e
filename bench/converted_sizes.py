"""Size of the decoder-only safetensors an original `.pth` zoo card converts to in the clipseg cache (docs/measurements.md).

ViT-B/16 shapes (width 768, projection 512), three decoder steps; run `.venv/bin/python bench/converted_sizes.py`.
"""

import tempfile
from pathlib import Path

from clipseg.core.config import ClipSegConfig
from clipseg.modeling.decoder import ClipSegDecoder
from clipseg.modeling.safetensors_io import save_safetensors

for name, reduce_dim, refined in (
    ("rd64-uni", 64, False),
    ("rd64-uni-refined", 64, True),
    ("rd16-uni", 16, False),
):
    decoder = ClipSegDecoder(
        hidden_size=768, prompt_dim=512, depth=3, reduce_dim=reduce_dim, refined_head=refined
    )
    config = ClipSegConfig(
        backbone="openai/clip-vit-base-patch16",
        reduce_dim=reduce_dim,
        complex_trans_conv=refined,
        decoder_dropout=0.1,
    )
    tensors = {"decoder." + k: v.contiguous() for k, v in decoder.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        save_safetensors(
            tensors,
            path,
            metadata={"format": "pt", "clipseg_config": config.to_json(), "clipseg_weights": "decoder"},
        )
        print(f"{name}: {path.stat().st_size} bytes = {path.stat().st_size / 1e6:.2f} MB")
