"""The sampling-mode contract: what every sampling mode passes (``rdmbench.api.SamplingMode``).

    from rdmbench.testing import SamplingModeContract

    class TestMyMode(SamplingModeContract):
        name = "my-mode"
        args = {"pool": 4}
        seeded = True
"""

from __future__ import annotations

import numpy as np

from rdmbench.registry import get_registry
from rdmbench.testing.common import clustered


class SamplingModeContract:
    """What every sampling mode must do. Subclass it and set, as class attributes:

    - ``name``: the registered plugin name; ``args``: constructor arguments (``sample.mode`` minus name);
    - ``seeded``: True when the queries depend on the seed (drawn), False when they do not (a fixed list).

    The mode reads a small fake source (a 60-entry sampling database, 40 training images' neighbours,
    25 held-out images, classes "a", "b", "c", and a text embedder: a fixed 16-d vector per text); reading
    anything its ``needs`` does not name fails.
    """

    name = ""
    args: dict = {}
    seeded = True

    def make(self, **overrides):
        spec = get_registry().validate("sampling_mode", {"name": self.name, **self.args, **overrides})
        return get_registry().create("sampling_mode", spec)

    def source(self, mode):
        """The fake source, gated by ``mode``'s needs as the task's is (``SamplingSource.gated``)."""
        from rdmbench.api import SamplingSource

        rng = np.random.default_rng(0)
        values = {
            "database_embeddings": clustered(60, 16), "database_images": rng.integers(0, 256, (60, 8, 8, 1), np.uint8),
            "database_labels": rng.integers(0, 3, 60), "database_class_names": ("a", "b", "c"),
            "proposal_ids": rng.integers(0, 60, (40, 16)),
            "reference_embeddings": clustered(25, 16, seed=2),
            "reference_images": rng.integers(0, 256, (25, 8, 8, 1), np.uint8),
            "reference_labels": rng.integers(0, 3, 25), "reference_class_names": ("a", "b", "c"),
        }
        values["class_names"] = ("a", "b", "c")

        def embed_text(texts):
            rows = [np.random.default_rng(list(t.encode())).normal(size=16) for t in texts]
            x = np.asarray(rows, np.float32).reshape(len(texts), 16)
            return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)

        return SamplingSource.gated(mode.name, type(mode).needs, embed_text=embed_text,
                                    **{name: (lambda value=value: value) for name, value in values.items()})

    def queries(self, num=30, k=4, seed=0, **overrides):
        mode = self.make(**overrides)
        return mode, mode.queries(self.source(mode), num, k, seed)

    def test_one_query_per_sample(self):
        mode, q = self.queries(num=30)
        assert len(q.ids) == 30
        if q.embeddings is not None:
            assert q.embeddings.shape == (30, 16) and q.embeddings.dtype == np.float32
        if q.images is not None:
            assert q.images.shape == (30, 8, 8, 1) and q.images.dtype == np.uint8
        if q.labels is not None:
            assert len(q.labels) == 30 and q.class_names
        if q.omit is not None:
            assert q.omit.shape == (30,) and ((q.omit == -1) | ((q.omit >= 0) & (q.omit < 60))).all()
            assert mode.extra_neighbours() >= 1, "a mode that omits ids must search extra neighbours"
        if q.texts is not None:
            assert len(q.texts) == 30 and all(isinstance(t, str) and t for t in q.texts)
        if q.pool is not None:
            assert mode.searched(4) >= q.pool >= 4, "a pool of l must be searched and hold at least k"
        assert q.source, "say where the queries come from (a row column)"

    def test_reproducible_and_seeded(self):
        _, a = self.queries(seed=3)
        _, b = self.queries(seed=3)
        np.testing.assert_array_equal(a.ids, b.ids)
        _, c = self.queries(seed=4)
        assert (not np.array_equal(a.ids, c.ids)) == self.seeded

    def test_check_k_answers_in_one_line(self):
        mode = self.make()
        for k, k_train in ((0, 4), (4, 4), (16, 1), (0, 0)):
            problem = mode.check_k(k, k_train)
            assert problem is None or (isinstance(problem, str) and "\n" not in problem)
        assert mode.check_k(mode.default_k(4), 4) is None
        assert mode.check_classes(("a", "b", "c")) is None

    def test_registered_with_a_description(self):
        info = get_registry().info("sampling_mode", self.name)
        assert info.cls.description(), "the first docstring line is what `rdmbench plugins` shows"
