"""A pretrained autoencoder loaded from local files: the first stage of the paper's latent RDMs.

Blattmann et al. 2022 (arXiv 2204.11824) train their ImageNet RDM in the latent space of the
pretrained VQ-f4 autoencoder of latent diffusion (Rombach et al. 2022, arXiv 2112.10752; KL-f8
for other models). This plugin loads such an autoencoder, never trains it, and never downloads:

- a diffusers model folder (``config.json`` + weights), through ``AutoencoderKL`` /
  ``VQModel.from_pretrained(path, local_files_only=True)``; ``scaling_factor`` from ``config.json``;
- a single LDM/CompVis checkpoint (``.ckpt``, ``.pt``, ``.pth``, ``.bin`` or ``.safetensors``: a
  first-stage checkpoint or a whole LDM's ``first_stage_model.*``) with the LDM YAML that describes
  it (``config``, default ``config.yaml`` beside the file, as in CompVis' model zips);
  ``scaling_factor`` from the YAML's ``scale_factor`` (LDM's default 1.0 when it has none).

Single files are read here (safetensors, or ``torch.load(weights_only=True)``, so a checkpoint
carrying pickled code is refused) and converted with diffusers' own ``convert_ldm_vae_checkpoint``,
then loaded strictly. Not through ``from_single_file``: in diffusers 0.42 it has no ``VQModel``,
reads only a whole LDM's config, and loads with ``strict=False`` (missing weights pass unnoticed).

Latents are as in ``autoencoder``: the KL posterior mode or VQ pre-quantisation latents, times
``scaling_factor``; ``decode`` quantises VQ latents to the codebook first. Images must be a multiple
of the downsampling factor (256 px at f = 4 or 8 in the paper). A VQ model also gives token ids
(``codebook.py``): ``decode`` is ``decode_tokens`` of the ids its latents snap to, and
``codebook_size`` reads the number of codes from the config file, without loading the weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rdmbench.api import FirstStage
from rdmbench.device import resolve_device
from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError
from rdmbench.hookspecs import hookimpl

SINGLE_FILE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors")
CLASSES = {"AutoencoderKL": "kl", "VQModel": "vq"}
MANIFEST = "pretrained.json"


class PretrainedAutoencoder(FirstStage):
    """A pretrained KL or VQ autoencoder from a local diffusers folder or LDM checkpoint (not trained)."""

    name = "pretrained-autoencoder"
    trainable = False
    code_modules = ("rdmbench_plugins.first_stages.codebook",)

    def __init__(self, path: str, kind: Literal["kl", "vq"] | None = None, config: str | None = None,
                 scaling_factor: float | None = None, batch_size: int = 32, device: str = "auto"):
        if scaling_factor is not None and not scaling_factor > 0:
            raise ConfigError("must be positive or null (from the checkpoint's config)", key="scaling_factor")
        if batch_size <= 0:
            raise ConfigError("must be positive", key="batch_size")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise ConfigError(f"expected auto, cpu, cuda, cuda:N or mps, got {device!r}", key="device")
        self.path, self.kind, self.config, self.scaling_factor = path, kind, config, scaling_factor
        self.batch_size, self.device = batch_size, device
        self._model = None
        self._device: str | None = None
        self._digest: str | None = None
        self._arch: dict[str, Any] | None = None

    # -- files -----------------------------------------------------------------------------------

    def _files(self) -> dict[str, Path]:
        """What will be read, by role; a missing one is a MissingDependency naming its key."""
        path = Path(self.path).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise MissingDependency(f"pretrained-autoencoder: path {str(path)!r} is a folder without config.json; "
                                        "give a diffusers model folder (save_pretrained) or a single checkpoint file")
            weights = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin"))
            if not weights:
                raise MissingDependency(f"pretrained-autoencoder: path {str(path)!r} holds no .safetensors or .bin weights")
            return {"config.json": path / "config.json", **{p.name: p for p in weights}}
        if not path.is_file():
            raise MissingDependency(
                f"pretrained-autoencoder: path {str(path)!r} is not a file or folder. The paper's autoencoders "
                "(LDM VQ-f4 / KL-f8) cannot be downloaded here: put a diffusers model folder or a CompVis "
                "model.ckpt (with its config.yaml) on disk and set first_stage.path to it")
        if path.suffix not in SINGLE_FILE_SUFFIXES:
            raise ConfigError(f"{str(path)!r}: expected a diffusers folder or a file ending in "
                              f"{', '.join(SINGLE_FILE_SUFFIXES)}", key="path")
        config = Path(self.config).expanduser() if self.config else path.parent / "config.yaml"
        if not config.is_file():
            raise MissingDependency(
                f"pretrained-autoencoder: config {str(config)!r} not found; a single checkpoint needs the LDM YAML "
                "that describes it (CompVis ships config.yaml beside model.ckpt): set first_stage.config")
        return {"weights": path, "config": config}

    def fingerprint(self) -> dict[str, Any]:
        """sha256 of every file read, so replacing a weights file changes every key downstream."""
        from rdmbench.cache import file_digest

        if self._digest is None:
            import hashlib

            h = hashlib.sha256()
            for role, p in self._files().items():
                h.update(f"{role}\0{file_digest(p)}\n".encode())
            self._digest = h.hexdigest()
        return {"weights_sha256": self._digest}

    # -- loading -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Load the weights before any work: a corrupted, pickle-bearing or mismatched checkpoint stops the
        suite in its preflight instead of failing every run after the data stages."""
        try:
            self._load()
        except RdmbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the loader raised, said in one line
            raise RdmbenchError(f"pretrained-autoencoder: could not load {self.path!r}: {_one_line(exc)}") from None

    def _load(self):
        if self._model is not None:
            return self._model
        files = self._files()
        self._device = resolve_device(self.device)
        if "config.json" in files:
            model, kind, scale = self._from_folder(Path(self.path).expanduser(), files["config.json"])
        else:
            model, kind, scale = self._from_single_file(files["weights"], files["config"])
        if self.kind is not None and kind != self.kind:
            raise ConfigError(f"{self.path!r} holds a {kind.upper()} autoencoder, not {self.kind.upper()}; "
                              f"set kind: {kind} or leave it out", key="first_stage.kind")
        self.kind = kind
        if self.scaling_factor is None:
            self.scaling_factor = float(scale)
        cfg = model.config
        # a VQModel's latents are its quant_conv's output: vq_embed_dim channels (None: latent_channels)
        width = cfg.latent_channels if kind == "kl" else (cfg.vq_embed_dim or cfg.latent_channels)
        self._arch = {"kind": kind, "latent_channels": int(width),
                      "factor": 2 ** (len(cfg.block_out_channels) - 1), "in_channels": int(cfg.in_channels)}
        self._model = model.eval().requires_grad_(False).to(self._device)
        return self._model

    def _from_folder(self, folder: Path, config_file: Path):
        from diffusers import AutoencoderKL, VQModel

        class_name = json.loads(config_file.read_text()).get("_class_name")
        if class_name not in CLASSES:
            raise ConfigError(f"{str(folder)!r} holds a {class_name!r}; expected one of {', '.join(CLASSES)}",
                              key="first_stage.path")
        cls = AutoencoderKL if class_name == "AutoencoderKL" else VQModel
        try:  # diffusers reads .bin with torch.load(weights_only=True) and prefers safetensors
            model = cls.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure here is the file's, said in one line
            raise RdmbenchError(f"pretrained-autoencoder: could not load {str(folder)!r}: {_one_line(exc)}") from exc
        return model, CLASSES[class_name], model.config.scaling_factor

    def _from_single_file(self, weights: Path, config_file: Path):
        from diffusers import AutoencoderKL, VQModel
        from diffusers.loaders.single_file_utils import LDM_VAE_KEYS, convert_ldm_vae_checkpoint

        state = _read_state_dict(weights)
        scale, first = _ldm_first_stage(config_file)
        dd = first["ddconfig"]
        prefix = next((p for p in LDM_VAE_KEYS if any(k.startswith(p) for k in state)), "")
        kind = "vq" if ("n_embed" in first or f"{prefix}quantize.embedding.weight" in state) else "kl"
        if dd.get("attn_resolutions"):
            raise ConfigError(f"attention inside the down/up blocks (attn_resolutions {dd['attn_resolutions']}) has "
                              "no diffusers equivalent", key="first_stage.config")
        blocks = [dd["ch"] * m for m in dd["ch_mult"]]
        common = dict(in_channels=dd["in_channels"], out_channels=dd["out_ch"], block_out_channels=blocks,
                      down_block_types=["DownEncoderBlock2D"] * len(blocks),
                      up_block_types=["UpDecoderBlock2D"] * len(blocks),
                      layers_per_block=dd["num_res_blocks"], latent_channels=dd["z_channels"], scaling_factor=scale)
        if kind == "vq":
            model = VQModel(**common, num_vq_embeddings=first["n_embed"], vq_embed_dim=first.get("embed_dim"))
        else:
            if first.get("embed_dim", dd["z_channels"]) != dd["z_channels"]:
                raise ConfigError("a KL autoencoder with embed_dim != z_channels has no diffusers equivalent",
                                  key="first_stage.config")
            model = AutoencoderKL(**common)
        converted = convert_ldm_vae_checkpoint(state, {"down_block_types": common["down_block_types"],
                                                       "up_block_types": common["up_block_types"]})
        if kind == "vq" and f"{prefix}quantize.embedding.weight" in state:
            converted["quantize.embedding.weight"] = state[f"{prefix}quantize.embedding.weight"]
        try:
            model.load_state_dict(converted, strict=True)
        except RuntimeError as exc:
            raise RdmbenchError(f"pretrained-autoencoder: {str(weights)!r} does not fit the architecture in "
                                f"{str(config_file)!r}: {_one_line(exc)}") from None
        return model, kind, scale

    # -- the first-stage contract ------------------------------------------------------------------

    def codebook_size(self) -> int | None:
        """From the loaded model, else from its config file (cheap: no weights read); the weights only
        when a diffusers config.json leaves num_vq_embeddings at VQModel's default."""
        if self._model is not None or self.kind == "kl":
            return int(self._model.config.num_vq_embeddings) if self.kind == "vq" else None
        files = self._files()
        if "config.json" in files:
            config = json.loads(files["config.json"].read_text())
            if config.get("_class_name") != "VQModel":
                return None
            if "num_vq_embeddings" in config:
                return int(config["num_vq_embeddings"])
        else:  # an LDM first stage without n_embed is a KL autoencoder (a VQ one cannot be built from it)
            first = _ldm_first_stage(files["config"])[1]
            return int(first["n_embed"]) if "n_embed" in first else None
        self._load()
        return int(self._model.config.num_vq_embeddings) if self.kind == "vq" else None

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        self._load()
        h, w, _ = (int(v) for v in image_shape)
        f = self._arch["factor"]
        return (self._arch["latent_channels"], h // f, w // f)

    def encode(self, images: np.ndarray) -> np.ndarray:
        import torch

        model = self._load()
        images = np.asarray(images)
        f = self._arch["factor"]
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
        if images.shape[1] % f or images.shape[2] % f:
            raise RdmbenchError(f"pretrained-autoencoder: {images.shape[1]}x{images.shape[2]} images are not a multiple "
                                f"of the downsampling factor {f}; set the dataset's image_size to a multiple of {f}")
        if images.shape[3] != self._arch["in_channels"]:
            raise RdmbenchError(f"pretrained-autoencoder: the model takes {self._arch['in_channels']}-channel images, "
                                f"got {images.shape[3]}")
        out = []
        with torch.inference_mode():
            for s in range(0, len(images), self.batch_size):
                x = torch.from_numpy(np.array(images[s:s + self.batch_size])).to(self._device)
                x = x.permute(0, 3, 1, 2).contiguous().float().div_(127.5).sub_(1.0)
                enc = model.encode(x)
                z = enc.latent_dist.mode() if self.kind == "kl" else enc.latents
                out.append((z * self.scaling_factor).float().cpu().numpy())
        if not out:
            return np.zeros((0, *self.latent_shape(images.shape[1:])), np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def decode(self, latents: np.ndarray) -> np.ndarray:
        model = self._load()
        z_all = np.asarray(latents, dtype=np.float32)
        if z_all.ndim != 4 or z_all.shape[1] != self._arch["latent_channels"]:
            raise ValueError(f"expected latents (N, {self._arch['latent_channels']}, H, W), got {z_all.shape}")
        if self.kind == "vq":  # snapped to the codebook through the ids, as decode_tokens
            return self.decode_tokens(self._token_ids(z_all))
        return self._pixels(z_all, lambda z: model.decode(z / self.scaling_factor).sample)

    def encode_tokens(self, images: np.ndarray) -> np.ndarray:
        self._load()
        if self.kind != "vq":
            return super().encode_tokens(images)
        return self._token_ids(self.encode(images))

    def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        from rdmbench_plugins.first_stages import codebook

        model = self._load()
        if self.kind != "vq":
            return super().decode_tokens(tokens)
        tokens = codebook.check_tokens(tokens, int(model.config.num_vq_embeddings))
        return self._pixels(tokens, lambda ids: codebook.decode_ids(model, ids))

    def _token_ids(self, latents: np.ndarray) -> np.ndarray:
        """Scaled VQ latents (N, D, h, w) -> int64 (N, h, w) ids of the codes decode snaps them to."""
        import torch

        from rdmbench_plugins.first_stages import codebook

        out = [np.zeros((0, *latents.shape[2:]), np.int64)]
        with torch.inference_mode():
            for s in range(0, len(latents), self.batch_size):
                z = torch.from_numpy(latents[s:s + self.batch_size]).to(self._device) / self.scaling_factor
                out.append(codebook.token_ids(self._model, z).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.int64)

    def _pixels(self, inputs: np.ndarray, network) -> np.ndarray:
        """uint8 NHWC images of ``network`` (a batch of ``inputs`` on the device -> NCHW in [-1, 1])."""
        import torch

        f = self._arch["factor"]
        out = [np.zeros((0, inputs.shape[-2] * f, inputs.shape[-1] * f, self._arch["in_channels"]), np.uint8)]
        with torch.inference_mode():
            for s in range(0, len(inputs), self.batch_size):
                x = network(torch.from_numpy(inputs[s:s + self.batch_size]).to(self._device))
                x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
                out.append(x.permute(0, 2, 3, 1).cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out))

    def save(self, directory: Path) -> None:
        """Only a manifest: the weights stay where they are, tied to the stage by their digest."""
        from rdmbench.cache import write_json

        self._load()
        write_json(Path(directory) / MANIFEST, {"path": str(self.path), "weights_sha256": self.fingerprint()["weights_sha256"],
                                                "scaling_factor": self.scaling_factor, "arch": self._arch})

    def load(self, directory: Path) -> None:
        from rdmbench.cache import read_json

        meta = read_json(Path(directory) / MANIFEST)
        if meta["weights_sha256"] != self.fingerprint()["weights_sha256"]:
            raise RdmbenchError(f"pretrained-autoencoder: the weights at {self.path!r} changed since {directory} was "
                                "computed; run again to recompute the stages that used them")
        self._load()


def _ldm_first_stage(config_file: Path) -> tuple[float, dict[str, Any]]:
    """(scale_factor, first-stage params with its ddconfig) of an LDM YAML: a first stage's or a whole LDM's."""
    import yaml

    ldm = yaml.safe_load(config_file.read_text()) or {}
    try:
        params = ldm["model"]["params"]
        first = params["first_stage_config"]["params"] if "first_stage_config" in params else params
        first["ddconfig"]  # noqa: B018 - every LDM first stage has one
        return params.get("scale_factor", 1.0), first
    except (KeyError, TypeError):
        raise ConfigError(f"{str(config_file)!r} is not an LDM config (model.params[.first_stage_config.params]"
                          ".ddconfig)", key="first_stage.config") from None


def _read_state_dict(path: Path) -> dict[str, Any]:
    """Tensors only: safetensors, or torch.load(weights_only=True), which refuses pickled code."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - a corrupt file, said in one line
            raise RdmbenchError(f"pretrained-autoencoder: cannot read {str(path)!r}: {_one_line(exc)}") from None
    else:
        from rdmbench.checkpoints import load_tensors

        state = load_tensors(path, "pretrained-autoencoder")
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RdmbenchError(f"pretrained-autoencoder: {str(path)!r} is not a state dict of tensors")
    return state


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


@hookimpl
def rdmbench_first_stages():
    return [PretrainedAutoencoder]
