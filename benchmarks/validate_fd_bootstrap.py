"""Is the FD bootstrap spread the spread of FD over fresh draws? Real Lite2 features (see
bench_bootstrap.py, whose --features file this reads): 4,000 Fashion-MNIST test images as the
"model", 1,000 others as the reference; FD of 40 random 500-draws vs 100 bootstrap resamples of one.

    python benchmarks/validate_fd_bootstrap.py [/tmp/rdmbench_bootstrap_lite2.npz]
"""
import sys

import numpy as np, time
f = np.load(sys.argv[1] if len(sys.argv) > 1 else "/tmp/rdmbench_bootstrap_lite2.npz"); ref_all = f["ref"].astype(np.float64)
rng = np.random.default_rng(0); perm = rng.permutation(5000)
pop, ref = ref_all[perm[:4000]], ref_all[perm[4000:]]
mu_r, cov_r = ref.mean(0), np.cov(ref, rowvar=False)
w, v = np.linalg.eigh(cov_r); root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T; trr = np.trace(cov_r)
def fd_w(x, z, wt):  # weights summing to n
    n = len(x); p = wt / wt.sum()
    mu = p @ x; muz = p @ z
    y = (z - muz) * np.sqrt(p)[:, None] * np.sqrt(n / (n - 1))
    ev = np.linalg.eigvalsh(y @ y.T)
    trg = (p @ ((x - mu) ** 2)).sum() * n / (n - 1)
    return ((mu - mu_r) ** 2).sum() + trg + trr - 2 * np.sqrt(np.clip(ev, 0, None)).sum()
zpop = pop @ root
t = time.time()
true = [fd_w(pop[s], zpop[s], np.ones(500)) for s in (rng.permutation(4000)[:500] for _ in range(40))]
print("per FD s", (time.time() - t) / 40)
print("true FD_500 over draws: mean %.1f sd %.2f" % (np.mean(true), np.std(true, ddof=1)))
s = rng.permutation(4000)[:500]; x, z = pop[s], zpop[s]
print("point", fd_w(x, z, np.ones(500)))
multi = [fd_w(x, z, np.bincount(rng.integers(0, 500, 500), minlength=500).astype(float)) for _ in range(100)]
bayes = [fd_w(x, z, rng.dirichlet(np.ones(500)) * 500) for _ in range(100)]
for name, r in (("multinomial", multi), ("bayesian", bayes)):
    print(name, "median %.1f sd %.2f" % (np.median(r), np.std(r, ddof=1)))
