"""The database contract: the retrieval database D, built disjoint from the training set X."""

from __future__ import annotations

from typing import Any

from rdmbench.api.images import ImageSet, SplitView
from rdmbench.api.plugin import Plugin


class Database(Plugin):
    """The retrieval database D, built so that it is disjoint from the training set X."""

    kind = "database"
    #: after ``build``: how many candidate images were left out because X holds them (by content), for the
    #: database stage's record; None when the plugin excludes nothing or does not count
    excluded: int | None = None

    def label(self) -> str:
        """A short name of this database for rows and the dry run (e.g. its dataset's name)."""
        return self.name

    def size_hint(self) -> int | None:
        """Number of entries if known from the config alone (lets k be checked before any work)."""
        return None

    def image_shape(self) -> tuple[int, ...] | None:
        """(H, W, C) of the images ``build`` will give, when one image read tells it (before any build,
        for checks such as a crop size); None: not known before building."""
        return None

    def build(self, train: ImageSet, seed: int) -> ImageSet | SplitView:
        """Return D's images (labels if known), or a ``SplitView`` of a dataset's rows, which the
        pipeline stores a chunk at a time. ``train`` is X (memory-mapped), so D can exclude it."""
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Extra cache-key material beyond the constructor arguments (e.g. source file hashes)."""
        return {}
