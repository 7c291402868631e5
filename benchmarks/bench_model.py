"""Model and selective-scan speed on this CPU, every number measured side by side in one run.

Prints, for 1 and 2 threads:
- selective scan forward and forward+backward per paper-size call (B 1, D 256, N 16, L 200,000) for
  every available path, as a ratio to the chunked PyTorch path; the sequential PyTorch reference is
  timed on a shorter L and extrapolated linearly (it is a per-step Python loop: time is linear in L);
- whole paper-soft and paper-hard forward per 200 kb window: seconds, peak RSS, counted GFLOP/s,
  and the share of the GEMM floor (GEMM FLOP / float32 matmul peak measured in the same run);
- one training step (forward + backward, batch 1, 200 kb): seconds and peak RSS.

Each measurement runs in a fresh subprocess so that its peak RSS is its own.
Usage: python benchmarks/bench_model.py [--quick] [--window 200000] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(task: str, threads: int, **kw) -> dict:
    """Run ``task`` in a fresh interpreter with ``threads`` torch threads; return its JSON result."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.bench_model import _task; _task({task!r}, {threads}, {json.dumps(kw)!r})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _task(task: str, threads: int, kw_json: str) -> None:
    import resource

    import torch

    torch.set_num_threads(threads)
    kw = json.loads(kw_json)
    result = TASKS[task](**kw)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result))


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int = 3) -> dict:
    import torch

    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    seconds = best_of(lambda: a @ b, repeats)
    return {"gflops": 2 * n**3 / seconds / 1e9}


def scan_inputs(length: int, requires_grad: bool = False):
    import torch

    g = torch.Generator().manual_seed(0)
    d, n = 256, 16
    x = dict(u=torch.randn(1, d, length, generator=g), delta=torch.randn(1, d, length, generator=g) * 0.5,
             A=-torch.arange(1, n + 1.0).repeat(d, 1), B=torch.randn(1, n, length, generator=g),
             C=torch.randn(1, n, length, generator=g), D=torch.ones(d), z=torch.randn(1, d, length, generator=g),
             delta_bias=torch.zeros(d))
    if requires_grad:
        for v in x.values():
            v.requires_grad_()
    return x


def scan_time(backend: str, length: int, backward: bool, repeats: int) -> dict:
    import torch

    from kipoi_seq2exp.ops.selective_scan import selective_scan

    x = scan_inputs(length, requires_grad=backward)

    def call():
        y = selective_scan(**x, delta_softplus=True, backend=backend)
        if backward:
            torch.autograd.grad(y.sum(), list(x.values()))

    if backend == "reference":
        with torch.no_grad():
            seconds = best_of(call, 1)
    elif backward:
        seconds = best_of(call, repeats)
    else:
        with torch.no_grad():
            call()
            seconds = best_of(call, repeats)
    return {"seconds": seconds}


def model_forward(preset: str, window: int, repeats: int) -> dict:
    import torch

    from kipoi_seq2exp.model import Seq2Exp, preset as make

    cfg = make(preset, window=window)
    model = Seq2Exp(cfg).eval()
    seq, signals, feats = _window_inputs(cfg)
    with torch.no_grad():
        model(seq, signals, feats)
        seconds = best_of(lambda: model(seq, signals, feats), repeats)
        gemm = _count_gemm_flop(cfg)
    scan = _scan_flop(cfg)
    return {"seconds": seconds, "gemm_gflop": gemm / 1e9, "total_gflop": (gemm + scan) / 1e9}


def train_step(preset: str, window: int) -> dict:
    import torch

    from kipoi_seq2exp.model import Seq2Exp, preset as make

    cfg = make(preset, window=window)
    model = Seq2Exp(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    seq, signals, feats = _window_inputs(cfg)
    target = torch.zeros(1)

    def step():
        opt.zero_grad()
        out = model(seq, signals, feats)
        model.loss(out, target).total.backward()
        opt.step()

    step()
    return {"seconds": best_of(step, 1)}


def _window_inputs(cfg):
    import torch

    g = torch.Generator().manual_seed(0)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (1, cfg.window), generator=g), 4).float()
    return seq, torch.rand(1, cfg.window, cfg.n_signals, generator=g), torch.randn(1, cfg.n_gene_features, generator=g)


def _count_gemm_flop(cfg) -> float:
    """GEMM/conv FLOP of one forward, counted by torch on a short window and scaled by length
    (every such op is linear in L). The hard predictor runs on the selected bases only; counting it
    at full length gives an upper bound."""
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from kipoi_seq2exp.model import Seq2Exp

    short = dataclasses.replace(cfg, window=4_000, centre=2_000)
    probe = Seq2Exp(short).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        probe(*_window_inputs(short))
    return counter.get_total_flops() * cfg.window / short.window


def _scan_flop(cfg) -> float:
    """Scan arithmetic: ~7 FLOP per (channel, state, step) forward (decay, drive, update, readout),
    two directions per layer."""
    layers = cfg.n_layers_generator + cfg.n_layers_predictor
    return 7.0 * cfg.d_inner * cfg.d_state * cfg.window * 2 * layers


TASKS = {"matmul_peak": matmul_peak, "scan": scan_time, "forward": model_forward, "train_step": train_step}


def available_backends() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from kipoi_seq2exp.ops.selective_scan import _compiled_scan

    return (["compiled"] if _compiled_scan() is not None else []) + ["chunked"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=200_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-length", type=int, default=5_000,
                        help="L at which the sequential reference is timed (then extrapolated)")
    parser.add_argument("--quick", action="store_true", help="scan only, no whole-model runs")
    args = parser.parse_args()
    L = args.window
    print(f"# Seq2Exp CPU benchmark: window {L:,}, threads {args.threads}, best of {args.repeats}\n")
    for threads in args.threads:
        peak = child("matmul_peak", threads)
        print(f"## {threads} thread(s); float32 matmul peak {peak['gflops']:.0f} GFLOP/s\n")
        print("| scan path (B 1, D 256, N 16) | forward s | fwd+bwd s | forward vs chunked | fwd+bwd vs chunked |")
        print("|---|---|---|---|---|")
        rows = {b: (child("scan", threads, backend=b, length=L, backward=False, repeats=args.repeats)["seconds"],
                    child("scan", threads, backend=b, length=L, backward=True, repeats=args.repeats)["seconds"])
                for b in available_backends()}
        ref_short = child("scan", threads, backend="reference", length=args.reference_length, backward=False, repeats=1)
        rows["reference (extrapolated)"] = (ref_short["seconds"] * L / args.reference_length, float("nan"))
        chunked = rows["chunked"]
        for name, (fwd, both) in rows.items():
            print(f"| {name} | {fwd:.3f} | {both:.3f} | {chunked[0] / fwd:.2f}x | {chunked[1] / both:.2f}x |")
        print(f"\nsequential reference timed at L = {args.reference_length:,} and scaled by {L / args.reference_length:.0f}.\n")
        if args.quick:
            continue
        print("| model (batch 1) | seconds | peak RSS GB | counted GFLOP | GFLOP/s | share of GEMM floor |")
        print("|---|---|---|---|---|---|")
        for preset in ("paper_soft", "paper_hard"):
            r = child("forward", threads, preset=preset, window=L, repeats=max(1, args.repeats - 1))
            if "error" in r:
                print(f"| {preset} forward | error: {r['error']} |")
                continue
            floor = r["gemm_gflop"] / peak["gflops"]
            print(f"| {preset} forward | {r['seconds']:.2f} | {r['peak_rss_gb']:.2f} | {r['total_gflop']:.0f} | "
                  f"{r['total_gflop'] / r['seconds']:.0f} | {floor / r['seconds']:.0%} |")
        r = child("train_step", threads, preset="paper_soft", window=L)
        if "error" in r:
            print(f"| paper_soft training step | error: {r['error']} |")
        else:
            print(f"| paper_soft training step (AdamW) | {r['seconds']:.2f} | {r['peak_rss_gb']:.2f} | | | |")
        print()


if __name__ == "__main__":
    main()
