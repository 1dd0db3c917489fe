"""The USearch plugin against rdmbench's retriever contract: the same tests every built-in passes."""

from rdmbench.testing import RetrieverContract


class TestUSearch(RetrieverContract):
    name = "usearch"
    library = "usearch.index"


class TestUSearchHalfPrecision(RetrieverContract):
    name = "usearch"
    build = {"dtype": "f16"}
    query = {"expansion_search": 128}
    exact_scores = False  # distances come from f16 copies of the vectors
