"""Model export to other runtimes: ``onnx`` (torch → four ONNX graphs checked in onnxruntime), ``quantize`` (int8)."""
