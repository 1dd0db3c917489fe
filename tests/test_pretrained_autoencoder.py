"""pretrained-autoencoder: tiny random-weight KL/VQ autoencoders written as diffusers folders and as
LDM single-file checkpoints (.ckpt and .safetensors, with config.yaml) load to the same network."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError

from rdmbench_plugins.first_stages.pretrained import PretrainedAutoencoder

CH, MULT, Z, N_EMBED = 32, (1, 1, 1), 3, 16  # f = 4 like the paper's VQ-f4, 32 groups like LDM


def tiny_autoencoder(kind: str, seed: int = 0, scaling_factor: float = 1.0, **vq):
    """A random-weight diffusers AutoencoderKL / VQModel shaped like LDM's first stages, only smaller."""
    import torch
    from diffusers import AutoencoderKL, VQModel

    common = dict(in_channels=3, out_channels=3, block_out_channels=[CH * m for m in MULT],
                  down_block_types=["DownEncoderBlock2D"] * len(MULT), up_block_types=["UpDecoderBlock2D"] * len(MULT),
                  layers_per_block=1, latent_channels=Z, scaling_factor=scaling_factor)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VQModel(**common, num_vq_embeddings=N_EMBED, **vq) if kind == "vq" else AutoencoderKL(**common)


def to_ldm_state_dict(model, prefix: str = "") -> dict:
    """diffusers' VAE keys -> LDM/CompVis keys: the inverse of diffusers' convert_ldm_vae_checkpoint."""
    n = len(model.config.block_out_channels)
    out = {}
    for key, value in model.state_dict().items():
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", key)
        k = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", k)
        k = re.sub(r"decoder\.up_blocks\.(\d+)\.resnets\.", lambda m: f"decoder.up.{n - 1 - int(m[1])}.block.", k)
        k = re.sub(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"decoder.up.{n - 1 - int(m[1])}.upsample.", k)
        k = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", k)
        k = k.replace("mid_block.attentions.0.", "mid.attn_1.").replace("conv_shortcut", "nin_shortcut")
        k = k.replace("conv_norm_out", "norm_out")
        if ".attn_1." in k:
            k = (k.replace("group_norm", "norm").replace("to_q", "q").replace("to_k", "k").replace("to_v", "v")
                 .replace("to_out.0", "proj_out"))
            if value.ndim == 2:  # LDM's attention projections are 1x1 convolutions
                value = value[:, :, None, None]
        out[prefix + k] = value.clone()
    return out


def ldm_config(kind: str, whole_ldm: bool = False, scale_factor: float | None = None) -> dict:
    dd = {"double_z": kind == "kl", "z_channels": Z, "resolution": 32, "in_channels": 3, "out_ch": 3, "ch": CH,
          "ch_mult": list(MULT), "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
    first = {"embed_dim": Z, "ddconfig": dd, **({"n_embed": N_EMBED} if kind == "vq" else {})}
    params = {"first_stage_config": {"target": "ldm.models.autoencoder.X", "params": first}} if whole_ldm else first
    if scale_factor is not None:
        params["scale_factor"] = scale_factor
    return {"model": {"target": "ldm.models.autoencoder.X", "params": params}}


def write_single_file(model, kind: str, folder: Path, suffix: str = ".ckpt", whole_ldm: bool = False,
                      scale_factor: float | None = None) -> Path:
    """A CompVis-style checkpoint (``{"state_dict": ...}`` or safetensors) with its config.yaml beside it."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = to_ldm_state_dict(model, "first_stage_model." if whole_ldm else "")
    if whole_ldm:  # a whole LDM holds the diffusion model too; only first_stage_model.* is read
        state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(4, 3, 3, 3)
    path = folder / f"model{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state}, path)
    (folder / "config.yaml").write_text(yaml.safe_dump(ldm_config(kind, whole_ldm, scale_factor)))
    return path


def _images(n: int = 3, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=["vq", "kl"])
def saved(request, tmp_path_factory):
    """One random model of each kind, as a diffusers folder and as LDM single files."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    model = tiny_autoencoder(kind, scaling_factor=0.5)
    model.save_pretrained(root / "diffusers")
    return kind, model, root


def test_diffusers_folder_loads_with_its_scaling_factor(saved):
    kind, model, root = saved
    fs = PretrainedAutoencoder(path=str(root / "diffusers"))
    z = fs.encode(_images())
    assert z.shape == (3, Z, 4, 4) and fs.latent_shape((16, 16, 3)) == (Z, 4, 4)
    assert fs.kind == kind and fs.scaling_factor == 0.5
    import torch

    with torch.inference_mode():
        enc = model.encode(torch.from_numpy(_images()).permute(0, 3, 1, 2).float() / 127.5 - 1)
        raw = enc.latent_dist.mode() if kind == "kl" else enc.latents
    np.testing.assert_allclose(z, 0.5 * raw.numpy(), rtol=1e-4, atol=1e-5)
    out = fs.decode(z)
    assert out.shape == (3, 16, 16, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("suffix,whole_ldm", [(".ckpt", False), (".safetensors", True)])
def test_single_file_equals_diffusers_folder(saved, suffix, whole_ldm):
    kind, model, root = saved
    path = write_single_file(model, kind, root / f"single{suffix}{whole_ldm}", suffix, whole_ldm,
                             scale_factor=0.5 if whole_ldm else None)
    single = PretrainedAutoencoder(path=str(path), kind=kind)
    folder = PretrainedAutoencoder(path=str(root / "diffusers"), scaling_factor=1.0)
    images = _images()
    latents = single.encode(images)
    # LDM's default scale factor is 1.0; a whole LDM's config says its own
    assert single.scaling_factor == (0.5 if whole_ldm else 1.0)
    np.testing.assert_allclose(latents / single.scaling_factor, folder.encode(images), rtol=1e-5, atol=1e-5)
    z = folder.encode(images)
    np.testing.assert_array_equal(single.decode(z * single.scaling_factor), folder.decode(z))


def test_codebook_size_is_read_from_the_config_alone(saved):
    """Read before any weights are: the runner asks it in its preflight."""
    kind, model, root = saved
    single = write_single_file(model, kind, root / "single-codebook")
    for path in (root / "diffusers", single):
        fs = PretrainedAutoencoder(path=str(path))
        assert fs.codebook_size() == (N_EMBED if kind == "vq" else None)
        assert fs._model is None
    assert PretrainedAutoencoder(path=str(single), kind="kl").codebook_size() is None


def test_vq_tokens_decode_like_the_model(saved):
    """Ids are the model's own quantiser's, and their images are the model's decode of its latents."""
    import torch

    kind, model, root = saved
    fs = PretrainedAutoencoder(path=str(root / "diffusers"))
    if kind == "kl":
        with pytest.raises(NotImplementedError, match="no codebook"):
            fs.encode_tokens(_images())
        return
    tokens = fs.encode_tokens(_images())
    x = torch.from_numpy(_images()).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.inference_mode():
        latents = model.encode(x).latents
        expected = model.quantize(latents)[2][2].reshape(3, 4, 4)
        pixels = model.decode(latents).sample
    np.testing.assert_array_equal(tokens, expected.numpy())
    out = fs.decode_tokens(tokens).astype(np.int16)
    reference = ((pixels.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(out - reference).max() <= 1  # the model adds z + (z_q - z): the same codes up to rounding


def test_code_width_other_than_latent_channels(tmp_path):
    """A VQModel's latents are its codes, vq_embed_dim wide, not latent_channels."""
    tiny_autoencoder("vq", vq_embed_dim=2).save_pretrained(tmp_path)
    fs = PretrainedAutoencoder(path=str(tmp_path))
    z = fs.encode(_images())
    assert z.shape == (3, 2, 4, 4) == (3, *fs.latent_shape((16, 16, 3)))
    assert fs.decode(z).shape == (3, 16, 16, 3)
    assert fs.encode_tokens(_images()).shape == (3, 4, 4)


def test_pickle_bearing_checkpoint_is_refused(tmp_path):
    import torch

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(ldm_config("vq")))
    torch.save({"state_dict": {}, "payload": Path("/etc")}, tmp_path / "model.ckpt")  # a pickled object
    with pytest.raises(RdmbenchError, match="weights_only"):
        PretrainedAutoencoder(path=str(tmp_path / "model.ckpt")).encode(_images())


def test_missing_files_are_named_at_fingerprint(tmp_path):
    with pytest.raises(MissingDependency, match="first_stage.path"):
        PretrainedAutoencoder(path=str(tmp_path / "none.ckpt")).fingerprint()
    (tmp_path / "model.ckpt").write_bytes(b"")
    with pytest.raises(MissingDependency, match="first_stage.config"):
        PretrainedAutoencoder(path=str(tmp_path / "model.ckpt")).fingerprint()
    with pytest.raises(ConfigError, match="scaling_factor"):
        PretrainedAutoencoder(path="x", scaling_factor=0)


def test_fingerprint_follows_the_weights_and_load_refuses_replaced_ones(tmp_path):
    path = write_single_file(tiny_autoencoder("vq", seed=1), "vq", tmp_path / "a")
    fs = PretrainedAutoencoder(path=str(path))
    before = fs.fingerprint()
    fs.save(tmp_path / "stage")
    write_single_file(tiny_autoencoder("vq", seed=2), "vq", tmp_path / "a")
    again = PretrainedAutoencoder(path=str(path))
    assert again.fingerprint() != before
    with pytest.raises(RdmbenchError, match="changed"):
        again.load(tmp_path / "stage")


def test_kind_mismatch_is_an_error(saved):
    kind, _, root = saved
    other = "kl" if kind == "vq" else "vq"
    with pytest.raises(ConfigError, match=f"kind: {kind}"):
        PretrainedAutoencoder(path=str(root / "diffusers"), kind=other).encode(_images())


def test_image_size_must_fit_the_downsampling(saved):
    _, _, root = saved
    with pytest.raises(RdmbenchError, match="multiple of 4"):
        PretrainedAutoencoder(path=str(root / "diffusers")).encode(_images(size=18))


# --- the first-stage contract (test_first_stages.py), for a pretrained RGB model -------------------

from test_first_stages import FirstStageContract  # noqa: E402


class TestPretrainedContract(FirstStageContract):
    """``fit`` is a no-op (nothing is trained), so determinism and round trips hold trivially; a
    pretrained model takes the channels it was trained on: RGB here, grey is refused. A VQ model: it has tokens."""

    has_tokens = True

    @pytest.fixture(scope="class", autouse=True)
    def _weights(self, request, tmp_path_factory):
        request.cls.path = write_single_file(tiny_autoencoder("vq"), "vq", tmp_path_factory.mktemp("contract"))

    def make(self):
        return PretrainedAutoencoder(path=str(self.path))

    def test_latent_shape_matches_encode(self):
        super().test_latent_shape_matches_encode(3)

    def test_decode_encode_gives_uint8_nhwc(self):
        super().test_decode_encode_gives_uint8_nhwc(3)

    def test_grey_images_are_refused(self):
        with pytest.raises(RdmbenchError, match="3-channel"):
            self.make().encode(_images()[..., :1])
