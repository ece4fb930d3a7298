"""Baselines for bench/topk-svd.bench.mjs: times scipy svds (ARPACK) and numpy svd (LAPACK) on the same
matrices the JS benchmark uses. Usage: python3 baseline.py <job.json>; prints one JSON object."""
import json
import sys
import time

import numpy as np

job = json.load(open(sys.argv[1]))
out = {"numpy": np.__version__}
try:
    import scipy
    from scipy.sparse.linalg import svds
    out["scipy"] = scipy.__version__
except Exception as exc:  # noqa: BLE001
    svds = None
    out["scipy_error"] = str(exc)


def best_of(fn, repeats):
    """Best wall-clock and best process-CPU time in ms over `repeats` runs, and the last result."""
    best = float("inf")
    best_cpu = float("inf")
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        c0 = time.process_time()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3, best_cpu * 1e3, result


cases = []
for case in job["cases"]:
    a = np.fromfile(case["file"], dtype="<f8").reshape(case["m"], case["n"])
    k = case["k"]
    entry = {"name": case["name"]}
    ms, cpu, (_, s_full, _) = best_of(lambda: np.linalg.svd(a, full_matrices=False), job["repeats"])
    entry["numpy_ms"] = ms
    entry["numpy_cpu_ms"] = cpu
    entry["numpy_s"] = s_full[:k].tolist()
    if svds is not None:
        ms, cpu, (_, s_k, _) = best_of(lambda: svds(a, k=k, random_state=0), job["repeats"])
        entry["scipy_ms"] = ms
        entry["scipy_cpu_ms"] = cpu
        entry["scipy_s"] = sorted(s_k.tolist(), reverse=True)
    cases.append(entry)
out["cases"] = cases

if "stats" in job:
    st = job["stats"]
    g = np.fromfile(st["g"], dtype="<f8").reshape(st["b"], st["fan_out"])
    h = np.fromfile(st["h"], dtype="<f8").reshape(st["b"], st["fan_in"])
    m = np.zeros((st["fan_out"], st["fan_in"]))

    def accumulate():
        global m
        m += g.T @ h
        return m

    ms, cpu, _ = best_of(accumulate, job["repeats"] * 5)
    out["stats_numpy_ms"] = ms
    out["stats_numpy_cpu_ms"] = cpu
print(json.dumps(out))
