"""numpy on the data of `dpt lstsq --dataset synthetic:N,D --no-intercept`, for scripts/bench lstsq.

Regenerates exactly the rows dpt generates (Sources/Datasets/Synthetic.swift: a SplitMix64 finaliser of
(seed, row, column), Box-Muller), then times numpy's normal equations (X^T X, X^T y, Cholesky) and
numpy.linalg.lstsq on them, and prints one JSON line with the times and the coefficients.
  python3 scripts/lstsq_reference.py --n 1000000 --d 100 --threads 2
"""
import argparse
import json
import os
import time

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=1_000_000)
p.add_argument("--d", type=int, default=100)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--noise", type=float, default=0.01)
a = p.parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(a.threads)

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

MASK = (1 << 64) - 1
U = np.uint64


def mix_int(x):  # scalar, Python integers
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def mix(z):  # uint64 arrays wrap modulo 2^64
    z = (z ^ (z >> U(30))) * U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U(27))) * U(0x94D049BB133111EB)
    return z ^ (z >> U(31))


def key(seed, stream):
    return U(mix_int((seed * 0xD1B54A32D192ED03 + stream) & MASK))


def uniform(k, counter):
    return (mix(k + counter * U(0x9E3779B97F4A7C15)) >> U(11)).astype(np.float64) * 2.0 ** -53


def normal(k, counter):
    u1, u2 = uniform(k, U(2) * counter), uniform(k, U(2) * counter + U(1))
    return np.sqrt(-2 * np.log(1 - u1)) * np.cos(2 * np.pi * u2)


with np.errstate(over="ignore"):
    beta = 2 * uniform(key(a.seed, 2), np.arange(a.d, dtype=np.uint64)) - 1
    k = key(a.seed, 1)
    X = np.empty((a.n, a.d))
    y = np.empty(a.n)
    chunk = 20000
    cols = np.arange(a.d + 1, dtype=np.uint64)
    for s in range(0, a.n, chunk):
        rows = np.arange(s, min(s + chunk, a.n), dtype=np.uint64)
        z = normal(k, rows[:, None] * U(a.d + 1) + cols[None, :])
        X[s:s + len(rows)] = z[:, :a.d]
        y[s:s + len(rows)] = z[:, :a.d] @ beta + a.noise * z[:, a.d]

t0 = time.perf_counter()
normal_coef = scipy.linalg.cho_solve(scipy.linalg.cho_factor(X.T @ X), X.T @ y)
t_normal = time.perf_counter() - t0
t0 = time.perf_counter()
lstsq_coef = np.linalg.lstsq(X, y, rcond=None)[0]
t_lstsq = time.perf_counter() - t0
print(json.dumps({
    "bench": "lstsq_reference", "numpy": np.__version__, "n": a.n, "d": a.d, "threads": a.threads,
    "s_normal_cholesky": round(t_normal, 4), "s_numpy_lstsq": round(t_lstsq, 4),
    "max_coef_err_vs_true": float(np.abs(lstsq_coef - beta).max()),
    "normal_vs_lstsq": float(np.abs(normal_coef - lstsq_coef).max()),
    "coefficients": lstsq_coef.tolist(),
}))
