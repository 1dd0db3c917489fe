"""The lit encoder's trained part: two linear projections into one space, fit contrastively (imports torch)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = "projections.pt"


class Projections(torch.nn.Module):
    """Image features (standardised with the training set's statistics) and sentence embeddings, each
    projected linearly into one L2-normalised space; ``scale`` is the learned inverse temperature."""

    def __init__(self, image_dim: int, text_dim: int, dim: int):
        super().__init__()
        self.image_proj = torch.nn.Linear(image_dim, dim)
        self.text_proj = torch.nn.Linear(text_dim, dim)
        self.log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        self.register_buffer("mean", torch.zeros(image_dim))
        self.register_buffer("std", torch.ones(image_dim))

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj((x - self.mean) / self.std), dim=-1)

    def embed_texts(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(t), dim=-1)

    # numpy in, numpy out: what the encoder plugin calls
    def image(self, features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.embed_images(self._tensor(features)).cpu().numpy()

    def text(self, features: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.embed_texts(self._tensor(features)).cpu().numpy()

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.mean.device)


def captions(templates: tuple[str, ...], class_names: tuple[str, ...]) -> list[str]:
    """Every template filled with every class name: template-major, (T * C) captions."""
    return [t.replace("{class}", name) for t in templates for name in class_names]


def fit(enc: Any, features: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
        progress: Any = None) -> tuple[Projections, dict]:
    """Train the projections of ``enc`` (a LitEncoder: its settings and sentence encoder) on image ``features``
    with captions of their ``labels``; evaluate on a held-out share with unseen templates."""
    from rdmbench.device import resolve_device

    n, classes = len(features), len(class_names)
    rng = np.random.default_rng(enc.seed)
    order = rng.permutation(n)
    held = order[: max(classes, int(round(enc.held_out_fraction * n)))]
    unseen = np.array([class_names.index(c) for c in enc.held_out_classes], np.int64)
    fit_rows = np.setdiff1d(np.arange(n), held)
    fit_rows = fit_rows[~np.isin(labels[fit_rows], unseen)]  # neither their images nor any caption naming them
    if len(fit_rows) < 2:
        raise ValueError(f"lit: {n} training images are too few to fit and hold out from")
    train_text = enc.text_features(captions(enc.templates, class_names)).reshape(len(enc.templates), classes, -1)
    test_text = enc.text_features(captions(enc.held_out_templates, class_names)).reshape(len(enc.held_out_templates),
                                                                                         classes, -1)
    device = resolve_device(enc.device)
    generator = torch.Generator().manual_seed(enc.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(enc.seed)
        model = Projections(features.shape[1], train_text.shape[-1], enc.dim)
    x = torch.as_tensor(np.asarray(features[fit_rows], np.float32))
    model.mean.copy_(x.mean(0))
    model.std.copy_(x.std(0) + 1e-6)
    model.to(device)
    y = torch.as_tensor(labels[fit_rows], dtype=torch.int64)
    texts = torch.as_tensor(train_text)
    # not the heads' shared loop (rdmbench.training): a few hundred small contrastive steps on frozen features, a
    # caption template drawn per image, no EMA or warm-up to gain; moving them would change every lit run's numbers
    optimiser = torch.optim.AdamW(model.parameters(), lr=enc.lr, weight_decay=enc.weight_decay)
    losses = []
    with progress.task("lit projections", enc.steps) if progress else nullcontext() as advance:
        for _ in range(enc.steps):
            losses.append(_step(model, optimiser, x, y, texts, enc, generator, device))
            if advance:
                advance(1)
    model.eval().requires_grad_(False)
    report = evaluate(model, features[held], labels[held], test_text, train_text)
    if len(unseen):
        report["image_to_text_unseen_classes"] = unseen_accuracy(model, features[held], labels[held], test_text,
                                                                 unseen)
    tail = losses[-max(1, len(losses) // 10):]
    return model, {**report, "final_loss": float(np.mean(tail)), "held_out_images": int(len(held)),
                   "fit_images": int(len(fit_rows)), "templates": len(enc.templates),
                   "held_out_templates": len(enc.held_out_templates)}


def _step(model: Projections, optimiser: Any, x: torch.Tensor, y: torch.Tensor, texts: torch.Tensor, enc: Any,
          generator: torch.Generator, device: str) -> float:
    """One batch of images, each with a caption of its class from a random template; CLIP's symmetric loss."""
    rows = torch.randint(0, len(x), (min(enc.batch_size, len(x)),), generator=generator)
    template = torch.randint(0, len(enc.templates), (len(rows),), generator=generator)
    z_image = model.embed_images(x[rows].to(device))
    z_text = model.embed_texts(texts[template, y[rows]].to(device))
    logits = model.log_scale.exp().clamp(max=100.0) * z_image @ z_text.T
    same = (y[rows][:, None] == y[rows][None]).float().to(device)  # every caption of the class is a positive
    loss = -0.5 * ((F.log_softmax(logits, 1) * same / same.sum(1, keepdim=True)).sum(1).mean()
                   + (F.log_softmax(logits, 0) * same / same.sum(0, keepdim=True)).sum(0).mean())
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.item()


def evaluate(model: Projections, features: np.ndarray, labels: np.ndarray, unseen: np.ndarray,
             seen: np.ndarray) -> dict[str, float]:
    """image→text accuracy and text→image precision on held-out images, with unseen (and, for comparison,
    seen) templates; ``unseen``/``seen`` are sentence embeddings (templates, classes, dim)."""
    z = model.image(features)
    out: dict[str, float] = {}
    for name, bank in (("", unseen), ("_seen_templates", seen)):
        accuracy, precision = [], []
        for per_template in bank:
            sim = z @ model.text(per_template).T  # (images, classes)
            accuracy.append(np.mean(sim.argmax(1) == labels))
            for c in range(sim.shape[1]):
                depth = int(np.sum(labels == c))
                if depth:
                    top = np.argpartition(-sim[:, c], depth - 1)[:depth]
                    precision.append(np.mean(labels[top] == c))
        out[f"image_to_text{name}"] = float(np.mean(accuracy))
        out[f"text_to_image{name}"] = float(np.mean(precision))
    return out


def unseen_accuracy(model: Projections, features: np.ndarray, labels: np.ndarray, unseen_templates: np.ndarray,
                    classes: np.ndarray) -> float:
    """image→text accuracy, among every class's captions of unseen templates, on the held-out images of the
    classes kept out of the fit: how far the space carries to names it never learned."""
    rows = np.isin(labels, classes)
    z = model.image(features[rows])
    return float(np.mean([np.mean((z @ model.text(t).T).argmax(1) == labels[rows]) for t in unseen_templates]))


def save(model: Projections, directory: Path) -> None:
    import io

    from rdmbench.cache import write_bytes

    buffer = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state": state, "dims": torch.tensor([model.image_proj.in_features, model.text_proj.in_features,
                                                      model.image_proj.out_features])}, buffer)
    write_bytes(Path(directory) / WEIGHTS, buffer.getvalue())


def load(directory: Path, device: str) -> Projections:
    from rdmbench.device import resolve_device

    saved = torch.load(Path(directory) / WEIGHTS, weights_only=True, map_location="cpu")
    model = Projections(*(int(d) for d in saved["dims"]))
    model.load_state_dict(saved["state"])
    return model.eval().requires_grad_(False).to(resolve_device(device))
