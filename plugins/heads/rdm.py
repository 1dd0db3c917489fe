"""RDM: the retrieval-augmented diffusion head (Blattmann et al. 2022, eq. 4; arXiv 2204.11824).

A diffusers ``UNet2DConditionModel`` predicts the noise of a DDPM in the first stage's space while
cross-attending to the k neighbour embeddings {phi(y) : y in xi_k(x, D)}; a linear projection
(diffusers' ``encoder_hid_proj``) maps the encoder's dimension to the attention width. A learned
null conditioning replaces the neighbours with probability ``cond_dropout`` during training, which
gives classifier-free guidance at sampling time (Ho & Salimans 2022) and, with ``k = 0``, the fully
parametric baseline: the same network that only ever sees the null token. Sampling uses a diffusers
scheduler chosen by name (``sample.head.solver``): DDIM (Song et al. 2021, the default), DPM-Solver++
(Lu et al. 2022) or any other diffusers scheduler class, with the EMA weights.

Equal parameters (the paper compares RDM and baseline at equal parameter count): the pipeline
builds the ``k = 0`` baseline with the same ``context_dim`` as the RDM it is compared with (the
database embeddings' width), so both are the same network, projection and null token included,
parameter for parameter; only the conditioning differs. In the baseline the null token and the
projection together amount to one learned context vector, so the ~10% of parameters they hold
(1280-d embeddings into a 128-wide attention) count without adding capacity: equal count, not
more capacity. Every training stage reports ``head_parameters``.

Attention heads are sized as in the paper and LDM (``num_head_channels``): ``head_channels``
channels per head, so a level of C channels gets C / head_channels heads (the paper uses 32).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np

from rdmbench.api import Head, HeadInputs, SampleRequest, TrainingData, TrainSettings
from rdmbench.device import float_tensor
from rdmbench.errors import ConfigError
from rdmbench.hookspecs import hookimpl


class RDMHead(Head):
    """Latent/pixel diffusion UNet cross-attending to k retrieved neighbour embeddings (RDM)."""

    name = "rdm"
    #: the network module and the shared training loop: editing either recomputes what this head trained
    code_modules = ("rdmbench_plugins.heads.conditioned_unet", "rdmbench.training", "rdmbench.device")
    train_defaults = TrainSettings(steps=2000, batch_size=64, lr=3e-4, warmup_steps=100)

    def __init__(
        self,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        attention_levels: tuple[bool, ...] = (False, False, True),
        layers_per_block: int = 1,
        cross_attention_dim: int = 128,
        head_channels: int = 8,  # channels per attention head (LDM's num_head_channels; the paper: 32)
        norm_num_groups: int = 16,
        cond_dropout: float = 0.1,
        num_train_timesteps: int = 1000,
        beta_schedule: Literal["linear", "scaled_linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2",
        beta_start: float = 0.0015,
        beta_end: float = 0.0195,
        prediction_type: Literal["epsilon", "v_prediction"] = "epsilon",
        clip_sample: bool = False,
        snr_gamma: float | None = None,
    ):
        if len(attention_levels) != len(block_out_channels):
            raise ValueError("attention_levels needs one entry per block_out_channels entry")
        if any(c % norm_num_groups for c in block_out_channels):
            raise ValueError(f"every block_out_channels entry must be divisible by norm_num_groups={norm_num_groups}")
        if not 0.0 <= cond_dropout < 1.0:
            raise ValueError("cond_dropout must be in [0, 1)")
        _check_head_channels(head_channels, block_out_channels, attention_levels)
        self.model = None

    # -- building -------------------------------------------------------------------------------------
    def setup(self, inputs: HeadInputs, device: str, seed: int = 0) -> None:
        import torch
        from diffusers import DDPMScheduler

        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(inputs.shape, inputs.context_dim, device)
        self.k, self.device, self.latent_shape = inputs.k, device, tuple(inputs.shape)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=c["num_train_timesteps"], beta_schedule=c["beta_schedule"],
            beta_start=c["beta_start"], beta_end=c["beta_end"], prediction_type=c["prediction_type"],
            clip_sample=False,
        )

    def _build(self, latent_shape: tuple[int, ...], context_dim: int, device: str) -> None:
        from diffusers import UNet2DConditionModel

        from rdmbench_plugins.heads.conditioned_unet import ConditionedUNet

        c = self.config
        channels, height, width = latent_shape
        levels = c["attention_levels"]
        unet = UNet2DConditionModel(
            sample_size=(height, width),
            in_channels=channels,
            out_channels=channels,
            block_out_channels=tuple(c["block_out_channels"]),
            down_block_types=tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in levels),
            up_block_types=tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels)),
            layers_per_block=c["layers_per_block"],
            cross_attention_dim=c["cross_attention_dim"],
            encoder_hid_dim=context_dim,
            encoder_hid_dim_type="text_proj",
            # diffusers reads attention_head_dim as the NUMBER of heads (its issue #2011)
            attention_head_dim=_heads_per_level(c["head_channels"], c["block_out_channels"], levels),
            norm_num_groups=c["norm_num_groups"],
        )
        self.model = ConditionedUNet(unet, context_dim).to(device)

    # -- training (the loop is rdmbench.training's, shared by every head) --------------------------------
    def network(self):
        return self.model

    def loss(self, model, data: TrainingData, index, gen):
        """The DDPM loss of a batch: noise (or v) prediction at random timesteps, min-SNR-weighted if asked."""
        import torch

        c = self.config
        b = len(index)
        x0 = torch.from_numpy(np.asarray(data.latents[index.numpy()], dtype=np.float32)).to(self.device)
        context = float_tensor(data.context(index.numpy()), self.device)
        drop = self.null_mask(b, gen)
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (b,), generator=gen).to(self.device)
        xt = self.scheduler.add_noise(x0, noise, t)
        target = noise if c["prediction_type"] == "epsilon" else self.scheduler.get_velocity(x0, noise, t)
        pred = model(xt, t, context, drop.to(self.device))
        if c["snr_gamma"] is None:
            return torch.nn.functional.mse_loss(pred, target)
        # min-SNR-gamma weighting (Hang et al. 2023): far fewer steps to the same quality
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.scheduler, t)
        weight = torch.clamp(snr, max=c["snr_gamma"])
        weight = weight / (snr + 1 if c["prediction_type"] == "v_prediction" else snr)
        per_item = torch.nn.functional.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_item * weight).mean()

    # -- sampling -------------------------------------------------------------------------------------
    def sample(self, request: SampleRequest, progress=None, *, solver: str = "ddim", steps: int = 50,
               eta: float = 0.0) -> np.ndarray:
        """Args:
            solver: a diffusers scheduler: ddim, dpm++ (DPM-Solver++ 2nd order multistep) or a diffusers
                scheduler class name (e.g. EulerDiscreteScheduler), set up from the training schedule.
            steps: denoising steps.
            eta: DDIM's noise (0: deterministic; 1: DDPM-like); only for a scheduler whose step takes it.
        """
        import torch

        gen = torch.Generator().manual_seed(request.seed)
        step_args = {"generator": gen, **({"eta": eta} if _takes_eta(solver) else {})}
        out = np.empty((request.num, *self.latent_shape), dtype=np.float32)
        batches = range(0, request.num, request.batch_size)
        self.model.eval()
        request = self.conditioned(request)
        mode = self.guidance_path(request)
        ctx_progress = progress.task("sample", len(batches) * steps) if progress else nullcontext()
        with torch.inference_mode(), ctx_progress as advance:
            for s in batches:
                n = min(request.batch_size, request.num - s)
                context = float_tensor(None if request.context is None else request.context[s:s + n], self.device)
                x = torch.randn((n, *self.latent_shape), generator=gen).to(self.device)
                scheduler = self._scheduler(solver, steps)
                for t in scheduler.timesteps:
                    pred = self._guided_forward(x, t, context, request.guidance_scale, mode)
                    x = scheduler.step(pred, t, x, **step_args).prev_sample
                    if advance:
                        advance(1)
                out[s:s + n] = x.float().cpu().numpy()
        return out

    def _scheduler(self, solver: str, steps: int):
        """The diffusers scheduler ``solver`` names, from the training schedule's config, set up for ``steps``;
        a fresh one per batch (it keeps state)."""
        cls, options = _scheduler_class(solver)
        if cls.__name__ == "DDIMScheduler":
            options = {**options, "clip_sample": self.config["clip_sample"]}
        scheduler = cls.from_config(self.scheduler.config, **options)
        scheduler.set_timesteps(steps)
        return scheduler

    def _guided_forward(self, x, t, context, scale: float, mode: str):
        import torch

        model = self.model
        tt = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
        if mode == "none":
            return model(x, tt, context, None)
        if mode == "batched":
            both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([context, context]),
                         torch.cat([torch.ones(len(x), dtype=torch.bool, device=x.device),
                                    torch.zeros(len(x), dtype=torch.bool, device=x.device)]))
            uncond, cond = both.chunk(2)
        else:
            uncond = model(x, tt, context, torch.ones(len(x), dtype=torch.bool, device=x.device))
            cond = model(x, tt, context, None)
        return self.guide(uncond, cond, scale)

    def check_sampler(self, codebook_size: int | None, *, solver: str = "ddim", steps: int = 50,
                      eta: float = 0.0) -> str | None:
        if solver not in SOLVERS and solver not in diffusers_schedulers():
            return (f"solver={solver!r} is not a diffusers scheduler; allowed: {', '.join(SOLVERS)} or a scheduler "
                    f"class name ({', '.join(diffusers_schedulers()[:6])}, ...)")
        if steps < 1:
            return f"steps={steps} must be at least 1"
        if not 0.0 <= eta <= 1.0:
            return f"eta={eta} must be in [0, 1]"
        if eta and not _takes_eta(solver):
            return f"eta={eta} is DDIM's noise, and solver {solver!r} takes none: drop it or use solver: ddim"
        return None

    # -- persistence ----------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(Path(directory) / "head.safetensors"))
        (Path(directory) / "head.json").write_text(json.dumps({"config": self.config, "k": self.k}, default=list))

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        self.model.load_state_dict(load_file(str(Path(directory) / "head.safetensors"), device=str(self.device)))
        self.model.eval()


#: short names of the diffusers schedulers the paper's samplers are: class name and its options. DPM-Solver++ with
#: "leading" spacing, as DDIM's: linspace starts at t = 999, where squaredcos_cap_v2 leaves sigma ~ 2e4 and the
#: data prediction explodes (measured: FD 2653 vs DDIM's 1068 at 10 steps)
SOLVERS: dict[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                              "lower_order_final": True, "timestep_spacing": "leading"}),
}


def diffusers_schedulers() -> list[str]:
    """The scheduler classes diffusers exports (what ``solver`` may name besides the short names)."""
    import diffusers

    return sorted(n for n in dir(diffusers) if n.endswith("Scheduler") and hasattr(getattr(diffusers, n), "from_config"))


def _scheduler_class(solver: str) -> tuple[type, dict]:
    import diffusers

    name, options = SOLVERS.get(solver, (solver, {}))
    return getattr(diffusers, name), options


def _takes_eta(solver: str) -> bool:
    import inspect

    return "eta" in inspect.signature(_scheduler_class(solver)[0].step).parameters


def _check_head_channels(head_channels: int, channels, levels) -> None:
    """Every level with attention, and the middle block (always cross-attention, at the last
    level's width), must split into whole heads of ``head_channels`` channels."""
    attended = sorted({int(c) for c, a in zip(channels, levels) if a} | {int(channels[-1])})
    bad = [c for c in attended if head_channels <= 0 or c % head_channels]
    if bad:
        allowed = [d for d in range(1, min(attended) + 1) if all(c % d == 0 for c in attended)]
        raise ConfigError(f"head_channels={head_channels} does not divide {bad[0]} channels (levels with attention and "
                          f"the middle block have {attended}); allowed: {', '.join(map(str, allowed))}",
                          key="head_channels")


def _heads_per_level(head_channels: int, channels, levels) -> tuple[int, ...]:
    # levels without attention ignore the value; the last also sizes the middle block's heads
    last = len(channels) - 1
    return tuple(int(c) // head_channels if a or i == last else 1 for i, (c, a) in enumerate(zip(channels, levels)))


@hookimpl
def rdmbench_heads():
    return [RDMHead]
