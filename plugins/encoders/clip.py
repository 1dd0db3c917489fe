"""CLIP image (and text) embeddings through open_clip: the retrieval space of the RDM paper.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision"
(arXiv 2103.00020); Blattmann et al. 2022 (arXiv 2204.11824) retrieve neighbours with CLIP ViT-B/32
image embeddings and swap in text embeddings for text-to-image sampling, hence ``encode_text``.
Code: ``open_clip_torch``. Its weights cannot be downloaded here: ``pretrained`` is either a tag
already in the local Hugging Face cache or a local checkpoint file; ``None`` is random init, for
tests only. The offline default encoder is ``efficientnet-lite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rdmbench.api import Encoder
from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError
from rdmbench.device import resolve_device
from rdmbench.hookspecs import hookimpl


_CHECKPOINT_SUFFIXES = {".bin", ".pt", ".pth", ".safetensors", ".npz"}
_HOW_TO = ("CLIP weights cannot be downloaded in this environment: pass a local checkpoint as "
           "`pretrained: /path/to/open_clip_pytorch_model.bin`, or use the offline default encoder "
           "`efficientnet-lite`")


class ClipEncoder(Encoder):
    """open_clip image tower (local checkpoint or cached tag); text tower via encode_text.

    A tag brings its own preprocessing and activation (OpenAI's tags use QuickGELU); a bare file
    cannot, so OpenAI weights given as a file need the matching ``model`` (``ViT-B-32-quickgelu``).
    """

    name = "clip"
    provides = ("embedding",)
    encodes_text = True

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = "openai", image_size: int | None = None,
                 batch_size: int = 256, device: str = "auto"):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if image_size is not None and image_size <= 0:
            raise ValueError("image_size must be positive")
        self.model, self.pretrained, self.image_size = model, pretrained, image_size
        self.batch_size, self.device = batch_size, device
        self._net = None
        self._tokenizer = None
        self._digest: str | None = None

    def identity(self) -> str:
        if self.pretrained is None:
            weights = "RANDOM INIT, not a trained encoder"
        elif _is_file(self.pretrained):
            weights = f"checkpoint {Path(self.pretrained).name}"
        else:
            weights = self.pretrained
        size = f"{self.image_size}px" if self.image_size else "native size"
        return f"clip {self.model} ({weights}, {size})"

    def fingerprint(self) -> dict[str, Any]:
        from rdmbench.cache import file_digest

        if self.pretrained is None:
            return {"weights": "random-init"}
        if self._digest is None:
            self._digest = file_digest(Path(self._checkpoint()[0]))
        return {"weights_sha256": self._digest}

    def _checkpoint(self) -> tuple[str, dict[str, Any]]:
        """Local weights file and the pretrained tag's settings ({} for a plain file); never downloads."""
        assert self.pretrained is not None
        if _is_file(self.pretrained):
            return str(Path(self.pretrained).expanduser()), {}
        if "/" in self.pretrained or "\\" in self.pretrained or Path(self.pretrained).suffix in _CHECKPOINT_SUFFIXES:
            raise MissingDependency(f"clip: checkpoint {self.pretrained!r} is not a file. {_HOW_TO}")
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.model, self.pretrained)
        if not cfg:
            from rdmbench.registry import unknown_choice

            tags = open_clip.list_pretrained_tags_by_model(self.model)
            raise ConfigError(unknown_choice(f"pretrained tag for {self.model}", self.pretrained, tags)
                              + "; or a local checkpoint path", key="pretrained")
        path = _cached_file(cfg)
        if path is None:
            raise MissingDependency(f"clip: weights for {self.model} {self.pretrained!r} are not in the local "
                                    f"cache. {_HOW_TO}")
        return path, cfg

    def _load(self) -> Any:
        if self._net is None:
            import open_clip
            import torch

            if self.model not in open_clip.list_models():
                from rdmbench.registry import unknown_choice

                raise ConfigError(unknown_choice("open_clip model", self.model, open_clip.list_models()), key="model")
            common = dict(force_image_size=self.image_size, pretrained_text=False, weights_only=True)
            if self.pretrained is None:
                with torch.random.fork_rng(devices=[]):  # the same random network every time
                    torch.manual_seed(0)
                    net = open_clip.create_model(self.model, pretrained=None, **common)
            else:
                path, cfg = self._checkpoint()
                # a tag's preprocessing and activation travel with the tag, not with the file
                preprocess = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
                try:
                    net = open_clip.create_model(self.model, pretrained=path, force_preprocess_cfg=preprocess,
                                                 force_quick_gelu=bool(cfg.get("quick_gelu", False)), **common)
                except (OSError, RuntimeError, KeyError) as exc:  # the file is there but does not fit
                    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
                    raise RdmbenchError(f"clip: could not load {path!r} into {self.model}: {detail}") from exc
            device = resolve_device(self.device)
            self._net = net.eval().requires_grad_(False).to(device)
        return self._net

    def _preprocess(self, batch: Any) -> Any:
        """open_clip's eval transform (resize, centre crop or pad, normalise) on uint8 NHWC tensors, batched.

        open_clip runs it per image in PIL; this agrees to within a few grey levels (PIL rounds to
        uint8 after resizing, and its bicubic kernel is a little softer).
        """
        import torch
        import torch.nn.functional as F

        cfg = self._net.visual.preprocess_cfg
        out_h, out_w = (cfg["size"], cfg["size"]) if isinstance(cfg["size"], int) else cfg["size"]
        x = batch.permute(0, 3, 1, 2).float().div(255.0).expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        mode = cfg.get("resize_mode", "shortest")
        if mode == "squash":
            target = (out_h, out_w)
        else:  # "shortest" covers the output and crops, "longest" fits inside it and pads
            scale = (max if mode == "shortest" else min)(out_h / h, out_w / w)
            target = (max(1, round(h * scale)), max(1, round(w * scale)))
        if target != (h, w):
            interp = cfg.get("interpolation", "bicubic")
            x = F.interpolate(x, size=target, mode=interp, antialias=interp != "nearest",
                              **({} if interp == "nearest" else {"align_corners": False}))
            x = x.clamp(0.0, 1.0)  # PIL's bicubic saturates at uint8; match it
        h, w = x.shape[-2:]
        if mode == "longest":  # odd margins: the extra pixel goes right / bottom, as in torchvision
            top, left = (out_h - h) // 2, (out_w - w) // 2
            x = F.pad(x, (left, out_w - w - left, top, out_h - h - top), value=cfg.get("fill_color", 0) / 255.0)
        else:
            top, left = (h - out_h) // 2, (w - out_w) // 2
            x = x[..., top : top + out_h, left : left + out_w]
        mean = torch.tensor(cfg["mean"], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(cfg["std"], device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        net = self._load()
        device = next(net.parameters()).device
        with torch.inference_mode():
            batch = torch.from_numpy(images).to(device)
            return {"embedding": net.encode_image(self._preprocess(batch)).float().cpu().numpy()}

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Text-tower embeddings (N, dim) float32 in the same space as the image embeddings."""
        import open_clip
        import torch

        net = self._load()
        if self._tokenizer is None:
            try:
                self._tokenizer = open_clip.get_tokenizer(self.model)
            except OSError as exc:  # hf tokenizers are fetched from the Hub
                raise MissingDependency(f"clip: the {self.model} tokenizer is not available offline ({exc})") from exc
        device = next(net.parameters()).device
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(list(texts[start : start + self.batch_size])).to(device)
                parts.append(net.encode_text(tokens).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self._dim()), np.float32)

    def _dim(self) -> int:
        """Embedding width, which open_clip exposes under different names per tower type; ask the net."""
        import torch

        net = self._load()
        device = next(net.parameters()).device
        with torch.inference_mode():
            return int(net.encode_image(self._preprocess(torch.zeros(1, 8, 8, 3, dtype=torch.uint8,
                                                                     device=device))).shape[-1])


def _is_file(value: str) -> bool:
    return Path(value).expanduser().is_file()


def _cached_file(cfg: dict[str, Any]) -> str | None:
    """Where open_clip would have put the tag's weights, if they are already there (no network)."""
    import os

    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        safe = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else os.path.splitext(filename)[0] + ".safetensors"
        for candidate in (safe, filename):  # the order open_clip tries them in
            found = try_to_load_from_cache(repo, candidate)
            if isinstance(found, str):
                return found
        return None
    if cfg.get("url"):
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        return path if os.path.isfile(path) else None
    return None


@hookimpl
def rdmbench_encoders():
    return [ClipEncoder]
