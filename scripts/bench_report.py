#!/usr/bin/env python3
"""The tables of scripts/bench: one report per benchmark, from the JSON lines a sitting wrote.

    python3 scripts/bench_report.py MODE FILE.jsonl

Each line of FILE is {"name": ..., "rep": ..., "result": {dpt's or a peer's --json}} (bench_hosts adds "rate",
"hosts" and "tx_bytes_per_step"). Medians over the repetitions; ratios only between runs of the same sitting.
"""
import json
import os
import statistics
import sys


def load(path):
    """The sitting's lines, and their results grouped by run name."""
    rows = [json.loads(l) for l in open(path)]
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r["result"])
    return rows, by


def median(results, key):
    return statistics.median(r[key] for r in results)


def kernel(by, path=None):
    """The machine and each program's BLAS kernel (the sitting's FILE.machine), and the kernels dpt's runs report."""
    if path and os.path.exists(path + ".machine"):
        print()
        for line in open(path + ".machine"):
            print(line.rstrip())
    kernels = {r.get("blas") or r.get("blas_kernel") for rs in by.values() for r in rs if r.get("blas_kernel")}
    if kernels:
        print("dpt's runs: %s" % "; ".join(sorted(kernels)))


def ceiling(by):
    """The sitting's 2-thread sgemm GFLOP/s (median over the reps) and the kernel it ran, or None."""
    rs = by.pop("sgemm 2 threads", [])
    return statistics.median(r["gflops_median"] for r in rs) if rs else None


def before_after(med, names):
    """dpt with its kernel against OpenBLAS's own choice, and against the baseline binary, where the sitting ran them."""
    for name in names:
        for other, words in [(", OpenBLAS's own kernel", "with OpenBLAS's own kernel"), (", baseline", "with the baseline binary")]:
            if name in med and name + other in med:
                print("%s: %.0f samples/s, %.0f %s: %.2fx" % (name, med[name], med[name + other], words, med[name] / med[name + other]))


def report_train(path):
    rows, by = load(path)
    # A sample's forward and backward of the MLP 784-256-10: 2 (784 x 256 + 256 x 10) forward, the weight gradients
    # of both layers and the hidden layer's input gradient backward.
    flops = 2 * (784 * 256 + 256 * 10) + 2 * (784 * 256 + 256 * 10 + 256 * 10)
    peak = ceiling(by)
    print("\n| run | samples/s (median of %d) | test acc | peak memory per rank (MiB) |" % max(len(v) for v in by.values()))
    print("|---|---|---|---|")
    med = {}
    for name, rs in by.items():
        sps = statistics.median(r["samples_per_sec"] for r in rs)
        med[name] = sps
        mem = rs[-1].get("peak_rss_mib_per_rank")
        mem = ", ".join("%.0f" % m for m in mem) if mem else "-"
        print("| %s | %.0f | %.4f | %s |" % (name, sps, rs[-1].get("test_acc", float("nan")), mem))
    peers = {k: v for k, v in med.items() if not k.startswith("dpt")}
    print()
    before_after(med, ["dpt 1 rank", "dpt 2 ranks"])
    if peers and "dpt 2 ranks" in med:
        best = max(peers, key=peers.get)
        print("\ndpt 2 ranks / best peer (%s): %.2fx" % (best, med["dpt 2 ranks"] / peers[best]))
        for k, v in sorted(peers.items(), key=lambda kv: -kv[1]):
            print("  dpt 2 ranks / %s: %.2fx" % (k, med["dpt 2 ranks"] / v))
    if "dpt 1 rank" in med and "dpt 2 ranks" in med:
        print("dpt scaling 1 -> 2 ranks: %.2fx" % (med["dpt 2 ranks"] / med["dpt 1 rank"]))
    shares = []
    for r in by.get("dpt 2 ranks", []):
        ph = r.get("phase_seconds")
        if ph: shares.append(ph["exchange"] / sum(ph.values()))
    if shares:
        print("dpt 2 ranks: exchange %.1f%% of the step (median; %s)" % (100 * statistics.median(shares), r.get("exchange", "")))
    if peak and "dpt 2 ranks" in med:
        print("2-core sgemm ceiling: %.0f GFLOP/s = %.0f samples/s at %.3f MFLOP a sample; dpt 2 ranks at %.0f%% of it"
              % (peak, peak * 1e9 / flops, flops / 1e6, 100 * med["dpt 2 ranks"] * flops / (peak * 1e9)))
    kernel(by, path)


def samples_table(by, column, value):
    """Prints each run's median samples/s, `column` (value(result) of its last rep) and peak memory per rank; returns
    the medians by run name."""
    print("\n| run | samples/s (median of %d) | %s | peak memory per rank (MiB) |" % (max(len(v) for v in by.values()), column))
    print("|---|---|---|---|")
    med = {}
    for name, rs in by.items():
        med[name] = statistics.median(r["samples_per_sec"] for r in rs)
        mem = rs[-1].get("peak_rss_mib_per_rank")
        print("| %s | %.0f | %.4f | %s |" % (name, med[name], value(rs[-1]), ", ".join("%.0f" % m for m in mem) if mem else "-"))
    return med


def report_cnn(path):
    rows, by = load(path)
    flops = 4.16e6  # a sample's forward + backward: 3 x 1.386 MFLOP (conv 1->6 5x5 on 28x28, conv 6->16 on 14x14, dense)
    peak = ceiling(by)
    med = samples_table(by, "test acc", lambda r: r.get("test_acc", float("nan")))
    if "dpt 2 ranks" in med:
        d = med["dpt 2 ranks"]
        if "torch 2 threads" in med: print("\ndpt 2 ranks / torch 2 threads: %.2fx" % (d / med["torch 2 threads"]))
        if "dpt 1 rank" in med: print("dpt scaling 1 -> 2 ranks: %.2fx" % (d / med["dpt 1 rank"]))
        if peak:
            print("2-core sgemm ceiling: %.0f GFLOP/s = %.0f samples/s at %.2f MFLOP a sample; dpt 2 ranks at %.0f%% of it"
                  % (peak, peak * 1e9 / flops, flops / 1e6, 100 * d * flops / (peak * 1e9)))
        before_after(med, ["dpt 1 rank", "dpt 2 ranks"])
    kernel(by, path)


def report_gpt(path):
    rows, by = load(path)
    text = by.pop("text", [{}])[0]
    # A window's products, forward: 2 T (12 L D^2 + D V) for the dense layers and 4 L T^2 D for attention's q k^T and
    # P v; forward and backward 3 times that.
    L, D, T, V = 4, 128, 64, text.get("vocab", 81)
    flops = 3 * (2 * T * (12 * L * D * D + D * V) + 4 * L * T * T * D)
    peak = ceiling(by)
    print("\n%s characters, %s windows of 64, vocabulary %s" % (text.get("characters"), text.get("windows"), V))
    med = samples_table(by, "loss", lambda r: r.get("train_loss", r.get("loss", float("nan"))))
    if "dpt 2 ranks" in med:
        d = med["dpt 2 ranks"]
        if "torch 2 threads" in med: print("\ndpt 2 ranks / torch 2 threads: %.2fx (target 1.5x)" % (d / med["torch 2 threads"]))
        if "torch DDP 2 processes" in med: print("dpt 2 ranks / torch DDP 2 processes: %.2fx" % (d / med["torch DDP 2 processes"]))
        if "dpt 1 rank" in med: print("dpt scaling 1 -> 2 ranks: %.2fx" % (d / med["dpt 1 rank"]))
        if peak:
            print("2-core sgemm ceiling: %.0f GFLOP/s = %.0f samples/s at %.0f MFLOP a sample; dpt 2 ranks at %.0f%% of it"
                  % (peak, peak * 1e9 / flops, flops / 1e6, 100 * d * flops / (peak * 1e9)))
            if "torch 2 threads" in med:
                print("torch 2 threads at %.0f%% of it" % (100 * med["torch 2 threads"] * flops / (peak * 1e9)))
    kernel(by, path)


def report_lstsq(path):
    rows, by = load(path)
    med = lambda name, key: statistics.median(r[key] for r in by[name]) if name in by else float("nan")
    numpy_normal, numpy_lstsq = med("numpy same rows", "s_normal_cholesky"), med("numpy same rows", "s_numpy_lstsq")
    print("\n| run | seconds (median of %d) |" % max(len(v) for v in by.values()))
    print("|---|---|")
    for name in ["dpt normal 2 ranks", "dpt qr 2 ranks", "dpt normal 1 rank", "dpt qr 1 rank", "dpt normal 2 ranks, baseline"]:
        if name in by:
            print("| %s | %.3f |" % (name, med(name, "solve_seconds")))
    print("| numpy normal equations + Cholesky, 2 threads (same rows) | %.3f |" % numpy_normal)
    print("| numpy.linalg.lstsq, 2 threads (same rows) | %.3f |" % numpy_lstsq)
    if "peer_lstsq" in by:
        for k in ["normal_cholesky", "numpy_lstsq", "sklearn"]:
            print("| peer_lstsq.py %s, 2 threads (its own rows) | %.3f |" % (k, statistics.median(r["seconds"][k] for r in by["peer_lstsq"])))
    print("\ndpt normal 2 ranks / numpy normal equations: %.2f (target <= 0.5)" % (med("dpt normal 2 ranks", "solve_seconds") / numpy_normal))
    print("dpt TSQR 2 ranks / numpy.linalg.lstsq: %.2f (target <= 0.33)" % (med("dpt qr 2 ranks", "solve_seconds") / numpy_lstsq))
    if "dpt normal 2 ranks, baseline" in by:
        print("dpt normal 2 ranks / the baseline binary's: %.2f" % (med("dpt normal 2 ranks", "solve_seconds") / med("dpt normal 2 ranks, baseline", "solve_seconds")))
    ref = by["numpy same rows"][-1]["coefficients"]
    for name in ["dpt normal 2 ranks", "dpt qr 2 ranks"]:
        c = by[name][-1]["coefficients"]
        print("largest |coefficient difference| %s vs numpy.linalg.lstsq: %.2e" % (name, max(abs(a - b) for a, b in zip(c, ref))))
    print("numpy: largest |coefficient - true beta| %.2e" % by["numpy same rows"][-1]["max_coef_err_vs_true"])
    kernel(by, path)


def report_sweep(path):
    rows, by = load(path)
    med = lambda n, k: statistics.median(r[k] for r in by[n])
    print("\n| run | sweep seconds (training) | total seconds (with data loading) | best setting |")
    print("|---|---|---|---|")
    for n in by:
        print("| %s | %.2f | %.2f | %s |" % (n, med(n, "sweep_seconds"), med(n, "seconds"), by[n][-1]["best"]))
    two = "2 ranks, 2 groups of 1"
    for base in ["1 rank, 1 thread", "1 rank, 2 threads"]:
        if base in by and two in by:
            print("speed-up of 2 groups over %s: %.2fx sweep, %.2fx total (target >= 1.8x)" % (
                base, med(base, "sweep_seconds") / med(two, "sweep_seconds"), med(base, "seconds") / med(two, "seconds")))
    kernel(by, path)


def report_deterministic(path):
    rows, by = load(path)
    base = statistics.median(r["samples_per_sec"] for r in by["default"])
    print("\n| 2 ranks, Fashion-MNIST MLP | samples/s | relative to default | test acc |")
    print("|---|---|---|---|")
    for n, rs in by.items():
        v = statistics.median(r["samples_per_sec"] for r in rs)
        print("| %s | %.0f | %.2f | %.4f |" % (n, v, v / base, rs[-1]["test_acc"]))
    kernel(by, path)


def report_hosts(path):
    rows, by = load(path)
    runs = {}
    for r in rows:
        runs.setdefault((r["rate"], r["hosts"], r["name"]), []).append(r)
    cores = os.cpu_count()
    med = lambda rs, f: statistics.median(f(r) for r in rs)
    for rate in ["1gbit", "10gbit", "none"]:
        names = [k[2] for k in runs if k[0] == rate and k[1] <= 2 and k[2] not in ("scaling prediction", "dpt 1 rank, powersgd:4")]
        if not names: continue
        one = med(runs[(rate, 1, "dpt 1 rank")], lambda r: r["result"]["samples_per_sec"])
        peers = {k[2]: med(v, lambda r: r["result"]["samples_per_sec"]) for k, v in runs.items() if k[0] == rate and k[2].startswith("DDP")}
        best = max(peers.values()) if peers else None
        link = {"1gbit": "1 Gbit/s", "10gbit": "10 Gbit/s", "none": "unshaped veth"}[rate]
        print("\n### 2 hosts, %s (median of %d)\n" % (link, max(len(v) for v in runs.values())))
        print("| run | samples/s | test acc | bytes sent per step (hostA) | x dpt 1 rank | x best DDP |")
        print("|---|---|---|---|---|---|")
        for name in names:
            rs = runs[(rate, 1 if name == "dpt 1 rank" else 2, name)]
            sps = med(rs, lambda r: r["result"]["samples_per_sec"])
            acc = rs[-1]["result"].get("test_acc", float("nan"))
            tx = "-" if name == "dpt 1 rank" else "%.0f KB" % (med(rs, lambda r: r["tx_bytes_per_step"]) / 1e3)
            print("| %s | %.0f | %.4f | %s | %.2f | %s |" % (name, sps, acc, tx, sps / one, "%.2f" % (sps / best) if best else "-"))
    # The ceiling of 2 hosts in this sitting: the ranks' own work per step without any exchange, then with PowerSGD's
    # products (its exchange time on one rank, where nothing travels).
    ps = runs.get(("1gbit", 2, "dpt powersgd:4")); solo = runs.get(("1gbit", 1, "dpt 1 rank, powersgd:4"))
    if ps and solo:
        steps = 468
        one = med(runs[("1gbit", 1, "dpt 1 rank")], lambda r: r["result"]["samples_per_sec"])
        work = med(ps, lambda r: sum(v for k, v in r["result"]["phase_seconds"].items() if k != "exchange") / steps)
        own = med(solo, lambda r: r["result"]["phase_seconds"]["exchange"] / steps)
        print("\nCeiling of 2 hosts, same sitting: each rank's data, forward, loss, backward and optimizer take %.3f ms a step" % (work * 1e3))
        print("(%.0f samples/s = %.2fx one rank with no exchange at all); PowerSGD's own products take %.3f ms a step on one rank," % (128 / work, 128 / work / one, own * 1e3))
        print("so with them and an infinitely fast link 2 hosts reach at most %.0f samples/s = %.2fx one rank." % (128 / (work + own), 128 / (work + own) / one))
    pred = runs.get(("1gbit", 2, "scaling prediction"))
    if pred:
        p = pred[-1]["result"]
        names = {"all-reduce": "dpt plain all-reduce", "buckets": "dpt overlapped buckets", "bf16": "dpt bf16", "powersgd:4": "dpt powersgd:4"}
        link = p["link"]
        print("\n### dpt scaling at 1 Gbit/s: predicted (link measured: %.0f Mbit/s, %.1f us) against measured\n" % (link["bandwidth_bytes_per_sec"] * 8 / 1e6, link["latency_seconds"] * 1e6))
        print("| exchange | hosts | predicted samples/s | measured | error | predicted with the compute of %d ranks on %d cores | error |" % (3, cores))
        print("|---|---|---|---|---|---|---|")
        for e in p["predictions"]:
            if e["ranks"] < 2: continue
            rs = runs.get(("1gbit", e["ranks"], names[e["exchange"]]))
            if not rs: continue
            m = med(rs, lambda r: r["result"]["samples_per_sec"])
            # The namespace hosts share this machine's cores: with more ranks than cores each rank computes slower.
            share = max(1.0, e["ranks"] / cores)
            step = (e["step_seconds"] - e["communication_seconds"]) * share + e["communication_seconds"]
            shared = e["samples_per_sec"] * e["step_seconds"] / step
            extra = "| %.0f | %+.0f%% |" % (shared, 100 * (shared - m) / m) if share > 1 else "| - | - |"
            print("| %s | %d | %.0f | %.0f | %+.0f%% %s" % (e["exchange"], e["ranks"], e["samples_per_sec"], m, 100 * (e["samples_per_sec"] - m) / m, extra))
    kernel(by, path)


def report_models(path):
    """The layers of lists against the shorthands they spell, and what dropout and BatchNorm cost, 2 ranks."""
    rows, by = load(path)
    med = {n: median(rs, "samples_per_sec") for n, rs in by.items()}
    print("\n| run (2 ranks, Fashion-MNIST, one epoch) | samples/s (median of %d) | test acc |" % max(len(v) for v in by.values()))
    print("|---|---|---|")
    for n, rs in by.items():
        print("| %s | %.0f | %.4f |" % (n, med[n], rs[-1].get("test_acc", float("nan"))))
    pairs = [("MLP: list", "MLP: shorthand mlp", "a list spelling mlp / the shorthand"),
             ("MLP: list + dropout(0.2)", "MLP: list", "dropout's cost: step time +%.1f%% (target <= 5%%)"),
             ("CNN: list", "CNN: shorthand cnn:6,16", "a list spelling cnn:6,16 / the shorthand"),
             ("CNN: list + batchnorm", "CNN: list", "BatchNorm's cost: step time +%.1f%% (target <= 10%%)")]
    print()
    for a, b, what in pairs:
        if a in med and b in med:
            if "%" in what:
                print(what % (100 * (med[b] / med[a] - 1)))
            else:
                print("%s: %.3f" % (what, med[a] / med[b]))
    # BatchNorm's all-reduces: the time in its sums over the batch ("statistics") plus the gradient exchange, less the
    # exchange without BatchNorm: the sums also absorb the waits for the slower rank that the exchange pays otherwise.
    bn, plain = by.get("CNN: list + batchnorm", []), by.get("CNN: list", [])
    if bn and plain and bn[0].get("phase_seconds") and plain[0].get("phase_seconds"):
        def phase(rs, *keys):
            return statistics.median(sum(r["phase_seconds"].get(k, 0) for k in keys) for r in rs)
        step = phase(bn, *bn[0]["phase_seconds"].keys())
        extra = phase(bn, "statistics", "exchange") - phase(plain, "exchange")
        compute = phase(bn, "forward", "backward") - phase(plain, "forward", "backward")
        print("BatchNorm's all-reduces: %.3f s an epoch (statistics %.3f s, of which waits for the slower rank the exchange "
              "pays without it) = %.1f%% of the step (target <= 10%%); its arithmetic %.3f s = %.1f%%"
              % (extra, phase(bn, "statistics"), 100 * extra / step, compute, 100 * compute / step))
    kernel(by, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    globals()["report_" + sys.argv[1]](sys.argv[2])
