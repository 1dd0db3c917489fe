"""Fréchet distance between Gaussians fitted to generated and reference features (FID).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium" (arXiv 1706.08500). The computation is torch-fidelity's (``fid_features_to_statistics``
and ``fid_statistics_to_metric``), fed the features of whichever encoder the suite names; it is
"FID" in the published sense only with the ``inception-v3`` encoder.

Bootstrap resamples (rdmbench.stats) skip torch-fidelity's d x d eigen-decomposition of a
non-symmetric product: with A the symmetric square root of the reference covariance (one ``eigh``),
tr sqrt(C_g C_r) = sum sqrt(eig(A C_g A)), and A C_g A = Y^T Y / (n - 1) for the centred projected
features Y = (X - mu) A, whose non-zero eigenvalues are those of the n x n Gram matrix Y Y^T when
n < d. X A is computed once, so a resample costs a gather, a Gram matrix and an ``eigvalsh``.
"""

from __future__ import annotations

import numpy as np

from rdmbench.api import Metric, MetricInputs
from rdmbench.columns import Column
from rdmbench.errors import RdmbenchError
from rdmbench.hookspecs import hookimpl

FID = Column("fid", "FID", "lower", space_dependent=True)


class FidMetric(Metric):
    """Fréchet distance between Gaussian fits of generated and reference embeddings (torch-fidelity)."""

    name = "fid"
    columns = (FID,)

    def compute(self, inputs: MetricInputs) -> dict[str, float]:
        import torch
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

        stats = []
        for role in ("generated", "reference"):
            # float64: the covariance square root loses digits that matter when FID is small
            features = np.asarray(inputs.features(role, "embedding"), dtype=np.float64)
            if features.ndim != 2 or len(features) < 2:
                raise RdmbenchError(f"fid needs at least 2 {role} feature vectors, got shape {features.shape}")
            stats.append(fid_features_to_statistics(torch.from_numpy(features)))
        return {FID: float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID])}

    def resampler(self, inputs: MetricInputs):
        generated = np.asarray(inputs.features("generated", "embedding"), dtype=np.float64)
        mu_r, root, trace_r = inputs.of_reference("fid-root", lambda: reference_root(inputs))
        projected = generated @ root
        n, d = generated.shape

        def run(indices: np.ndarray) -> dict[str, np.ndarray]:
            from threadpoolctl import threadpool_limits

            out = np.empty(len(indices))
            # one BLAS thread: on a busy machine OpenBLAS threads spin, and a 500 x 500 eigvalsh took
            # 0.35 s with two threads against 0.06 s with one (benchmarks/RESULTS.md)
            with threadpool_limits(1):
                for b, idx in enumerate(indices):
                    out[b] = one(idx)
            return {FID: out}

        def one(idx: np.ndarray) -> float:
            x, y = generated[idx], projected[idx]
            mu = x.mean(0)
            y = y - y.mean(0)
            small = y @ y.T if n < d else y.T @ y
            eig = np.linalg.eigvalsh(small / (n - 1))
            trace_g = float(((x - mu) ** 2).sum()) / (n - 1)
            return float(((mu - mu_r) ** 2).sum() + trace_g + trace_r - 2 * np.sqrt(np.clip(eig, 0, None)).sum())

        return run


def reference_root(inputs: MetricInputs) -> tuple[np.ndarray, np.ndarray, float]:
    """The reference features' mean, the square root of their covariance, and its trace."""
    reference = np.asarray(inputs.features("reference", "embedding"), dtype=np.float64)
    mu_r, cov_r = reference.mean(0), np.cov(reference, rowvar=False)
    w, v = np.linalg.eigh(cov_r)
    return mu_r, (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T, float(np.trace(cov_r))


def frechet_distance_few(generated: np.ndarray, reference: np.ndarray) -> float:
    """The Fréchet distance of the Gaussian fits of two feature sets, exactly, for sets smaller than the
    feature width (a class's samples): with G and R the centred sets, tr sqrt(C_g C_r) is the sum of the
    singular values of G R^T / sqrt((n_g - 1)(n_r - 1)), an n_g x n_r matrix, so no d x d square root is
    taken (torch-fidelity's takes seconds at d = 1280; benchmarks/RESULTS.md, "per-class FD")."""
    x, y = np.asarray(generated, np.float64), np.asarray(reference, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise RdmbenchError(f"a Fréchet distance needs at least 2 vectors per set, got {len(x)} and {len(y)}")
    g, r = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.svd(g @ r.T / np.sqrt((len(x) - 1) * (len(y) - 1)), compute_uv=False).sum()
    mean = float(((x.mean(0) - y.mean(0)) ** 2).sum())
    return mean + float((g ** 2).sum()) / (len(x) - 1) + float((r ** 2).sum()) / (len(y) - 1) - 2 * float(cross)


@hookimpl
def rdmbench_metrics():
    return [FidMetric]
