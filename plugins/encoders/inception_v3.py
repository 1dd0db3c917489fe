"""The FID Inception-v3 (Szegedy et al. 2016, arXiv 1512.00567) as packaged by torch-fidelity.

Heusel et al. 2017 (arXiv 1706.08500) define FID on the pool3 features of TensorFlow's 2015-12-05
Inception graph; torch-fidelity's ``FeatureExtractorInceptionV3`` reproduces that graph (including
its TF1-style bilinear resize to 299 px), so numbers are comparable with published ones. Its
weights cannot be downloaded in this offline environment: they must be given as ``weights_path``.
The offline default encoder is ``efficientnet-lite``; numbers from the two are not comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rdmbench.api import Encoder
from rdmbench.checkpoints import load_tensors
from rdmbench.errors import MissingDependency, RdmbenchError
from rdmbench.device import resolve_device
from rdmbench.hookspecs import hookimpl


WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: our output name -> torch-fidelity's feature name
_FEATURES = {"embedding": "2048", "logits": "logits_unbiased"}


class InceptionV3Encoder(Encoder):
    """FID Inception-v3 (torch-fidelity, weights from a local file): pool3 2048-d and logits."""

    name = "inception-v3"
    provides = ("embedding", "logits")

    def __init__(self, weights_path: str | None = None, batch_size: int = 64, device: str = "auto"):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.weights_path, self.batch_size, self.device = weights_path, batch_size, device
        self._model = None
        self._digest: str | None = None

    def identity(self) -> str:
        return "inception-v3-compat (torch-fidelity FID weights)"

    def fingerprint(self) -> dict[str, Any]:
        from rdmbench.cache import file_digest

        if self._digest is None:
            self._digest = file_digest(self._weights_file())
        return {"weights_sha256": self._digest}

    def _weights_file(self) -> Path:
        path = None if self.weights_path is None else Path(self.weights_path).expanduser()
        if path is None or not path.is_file():
            given = "no weights_path was given" if path is None else f"weights_path {str(path)!r} is not a file"
            raise MissingDependency(
                f"inception-v3: {given}. The Inception-v3 FID weights ({WEIGHTS_FILE}) cannot be downloaded "
                f"offline; get the file elsewhere and pass it as `weights_path:`, or use the offline default "
                f"encoder `efficientnet-lite`.")
        return path

    def check(self) -> None:
        """The weights must load as plain tensors into the network: a corrupted or pickle-bearing file
        stops the suite before any work instead of failing every run at its metrics stage."""
        try:
            self._load()
        except RdmbenchError:
            raise
        except Exception as exc:  # torch raises several types for a file that is not a checkpoint
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RdmbenchError(f"inception-v3: cannot load weights_path {str(self._weights_file())!r}: {reason}") from None

    def _load(self) -> Any:
        if self._model is None:
            import io

            import torch
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            # torch-fidelity downloads when given no path and unpickles with weights_only=False: check
            # the file is plain tensors here, and hand it our own re-serialisation of what was checked.
            path = self._weights_file()
            state = load_tensors(path, "inception-v3")
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            model = FeatureExtractorInceptionV3("inception-v3-compat", list(_FEATURES.values()),
                                                feature_extractor_weights_path=buffer)
            device = resolve_device(self.device)
            self._model = model.to(device)
        return self._model

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        model = self._load()
        device = next(model.parameters()).device
        with torch.inference_mode():
            # uint8 NCHW RGB is what torch-fidelity takes; it resizes to 299 px itself
            batch = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).expand(-1, 3, -1, -1).contiguous()
            values = model.convert_features_tuple_to_dict(model(batch))
            return {ours: values[theirs].float().cpu().numpy() for ours, theirs in _FEATURES.items()}


@hookimpl
def rdmbench_encoders():
    return [InceptionV3Encoder]
