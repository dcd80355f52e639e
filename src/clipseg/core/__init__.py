"""What every part of clipseg shares and none of it needs torch for.

Config dataclasses (``config``), safe image reading (``images``), the one image ``preprocess`` of
training and inference (``preprocess``), prompts and the tokenizer (``prompts``, ``tokenizer``),
errors (``errors``), atomic writes and sha256 (``files``). Importing any of these never imports torch,
so an ONNX or web front end can use them alone.
"""
