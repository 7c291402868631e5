"""Training speed on the CPU: seconds per optimiser step, peak memory and counted FLOP.

Two parts, each in its own fresh process (so that each peak RSS is its own):

- demo: the packaged ``demo_soft`` / ``demo_hard`` configs on the embedded simulated genome
  (20 kb windows, d_model 32, batch 8 of real data-layer batches); one warm-up step, then
  ``--steps`` timed optimiser steps, one timed evaluation batch, and the resulting estimate of
  the whole demo run (max_steps steps + the validations);
- paper: the ``paper_soft`` (and ``--paper-variants hard``) architecture at L = 200,000, batch 1,
  random inputs, ONE optimiser step (takes minutes: leave it for a quiet machine).

FLOP counted per optimiser step (forward + backward):
- GEMMs and convolutions: ``torch.utils.flop_counter.FlopCounterMode`` (matmul = 2 m n k; the
  backward's two GEMMs per forward GEMM included), except the depthwise conv's backward: torch
  2.13's counter ignores ``groups`` there (it reports 33.7 GFLOP for a 0.13 GFLOP forward at
  L = 4,000), so it is counted as 2 x the forward conv instead;
- selective scan (a compiled kernel the counter cannot see): analytic, 9 flop per (batch,
  channel, state, step) forward (decay exp, delta*B*u, h update, C.h), backward counted as
  2 x forward (the kernel recomputes each block's forward, then runs the adjoint scan);
- elementwise work (norms, SiLU, softplus, Beta sampling, KL) is NOT counted.
"Fraction of peak" divides counted FLOP/s by the float32 GEMM peak measured here (4096^3 matmul).

On a CPU shared with other jobs run with ``OMP_WAIT_POLICY=PASSIVE``: OpenMP's spin-waiting threads
otherwise make each 2-thread step 5-10x slower as soon as the cores are oversubscribed.

    python benchmarks/bench_train.py --quick                 # demo part only (~2-4 min)
    python benchmarks/bench_train.py                         # + paper soft at 200 kb (minutes)
    python benchmarks/bench_train.py --paper-variants soft hard --threads 2
    python benchmarks/bench_train.py --demo-configs --paper-window 4000   # smoke test of the paper part
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import torch

SCAN_FORWARD_FLOP = 9
SCAN_BACKWARD_FACTOR = 2


def rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gemm_peak_gflops(size: int = 4096, repeats: int = 3) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b)[1] for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(fn) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class ScanCounter:
    """Counts the analytic selective-scan FLOP of every call made through the Mamba layers."""

    def __init__(self) -> None:
        import kipoi_seq2exp.model.mamba as mamba

        self.module = mamba
        self.original = mamba.selective_scan
        self.forward_flop = 0

    def __enter__(self) -> "ScanCounter":
        def counted(u, delta, A, *args, **kwargs):
            batch, channels, length = u.shape
            self.forward_flop += SCAN_FORWARD_FLOP * batch * channels * A.shape[1] * length
            return self.original(u, delta, A, *args, **kwargs)

        self.module.selective_scan = counted
        return self

    def __exit__(self, *exc) -> None:
        self.module.selective_scan = self.original

    @property
    def training_flop(self) -> int:
        return self.forward_flop * (1 + SCAN_BACKWARD_FACTOR)


def training_step(model, optimizer, batch: dict[str, torch.Tensor]) -> None:
    """What the Lightning module does per step (forward, loss, backward, clip, AdamW)."""
    out = model(batch["seq"], batch["signals"], batch["gene_features"])
    loss = model.loss(out, batch["target"]).total
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def counted_step(model, optimizer, batch) -> tuple[float, int, int]:
    """One training step under the FLOP counters: (seconds, GEMM+conv FLOP, scan FLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, ScanCounter() as scan:
        _, seconds = _timed(lambda: training_step(model, optimizer, batch))
    by_op = {str(op): flop for op, flop in counter.get_flop_counts()["Global"].items()}
    conv_backward = 2 * by_op.get("aten.convolution", 0)
    gemm = sum(flop for op, flop in by_op.items() if op != "aten.convolution_backward") + conv_backward
    return seconds, gemm, scan.training_flop


def report(name: str, seconds: float, gemm_flop: int, scan_flop: int, peak_gflops: float, peak_rss: float,
           extra: str = "") -> None:
    total = gemm_flop + scan_flop
    achieved = total / seconds / 1e9
    print(f"{name}: {seconds:.2f} s/step; counted {total / 1e12:.3f} TFLOP/step (GEMM+conv "
          f"{gemm_flop / 1e12:.3f}, scan {scan_flop / 1e12:.3f}); {achieved:.1f} GFLOP/s = "
          f"{100 * achieved / peak_gflops:.1f} % of the {peak_gflops:.0f} GFLOP/s GEMM peak; "
          f"peak RSS {peak_rss:.0f} MiB{extra}", flush=True)


# ---------------------------------------------------------------------- parts (each in a child process)
def demo_part(config: str, steps: int, threads: int, peak_gflops: float) -> None:
    torch.set_num_threads(threads)
    from kipoi_seq2exp.train.config import load_run_config
    from kipoi_seq2exp.train.datamodule import Seq2ExpDataModule
    from kipoi_seq2exp.train.optim import build_optimizer
    from kipoi_seq2exp.model import Seq2Exp

    torch.manual_seed(0)
    run = load_run_config(config)
    data = Seq2ExpDataModule(run.data, run.train)
    loader = iter(data.train_dataloader())
    batch, load_seconds = _timed(lambda: next(loader))
    model = Seq2Exp(run.model)
    optimizer = build_optimizer(model, run.train)
    training_step(model, optimizer, batch)  # warm-up: allocator, kernel choice
    batches = [next(loader) for _ in range(steps)]
    times = [_timed(lambda b=b: training_step(model, optimizer, b))[1] for b in batches]
    seconds = sorted(times)[len(times) // 2]
    _, gemm, scan = counted_step(model, optimizer, batches[0])
    eval_loader = data.val_dataloader()
    eval_batch = next(iter(eval_loader))
    _, eval_seconds = _timed(lambda: model.predict(eval_batch["seq"], eval_batch["signals"], eval_batch["gene_features"]))
    cfg = run.train
    n_validations = cfg.max_steps // cfg.val_every_n_steps
    estimate = cfg.max_steps * seconds + n_validations * len(eval_loader) * eval_seconds
    extra = (f"; all steps {', '.join(f'{t:.2f}' for t in times)} s; data {load_seconds:.2f} s/batch; "
             f"eval {eval_seconds:.2f} s/batch of {len(eval_batch['seq'])}; whole demo run "
             f"({cfg.max_steps} steps + {n_validations} validations) ~ {estimate / 60:.1f} min")
    report(f"{config} (L {run.model.window}, batch {cfg.batch_size}, {threads} threads)", seconds, gemm, scan,
           peak_gflops, rss_mib(), extra)


def paper_part(variant: str, window: int, threads: int, peak_gflops: float) -> None:
    torch.set_num_threads(threads)
    from kipoi_seq2exp.model import Seq2Exp, preset
    from kipoi_seq2exp.train.config import TrainConfig
    from kipoi_seq2exp.train.optim import build_optimizer

    torch.manual_seed(0)
    cfg = preset(f"paper_{variant}", window=window)
    length = cfg.window
    batch = {"seq": torch.nn.functional.one_hot(torch.randint(0, 4, (1, length)), 4).float(),
             "signals": torch.rand(1, length, cfg.n_signals) * torch.tensor([2.0, 2.0, 0.5]),
             "gene_features": torch.randn(1, cfg.n_gene_features), "target": torch.rand(1, 1) * 3}
    model = Seq2Exp(cfg)
    optimizer = build_optimizer(model, TrainConfig())
    before = rss_mib()
    seconds, gemm, scan = counted_step(model, optimizer, batch)
    report(f"paper_{variant} (L {length}, batch 1, {threads} threads, one step)", seconds, gemm, scan, peak_gflops,
           rss_mib(), f" (model + inputs before the step: {before:.0f} MiB)")


def in_child(target, *args) -> None:
    process = mp.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join()
    if process.exitcode:
        raise SystemExit(f"{target.__name__}{args[:1]} failed with exit code {process.exitcode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="demo part only")
    parser.add_argument("--demo-configs", nargs="*", default=["demo_soft", "demo_hard"])
    parser.add_argument("--paper-variants", nargs="+", default=["soft"], choices=["soft", "hard"])
    parser.add_argument("--paper-window", type=int, default=200_000, help="L of the paper part (smaller: smoke test)")
    parser.add_argument("--steps", type=int, default=3, help="timed demo steps (median reported)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = gemm_peak_gflops()
    print(f"float32 GEMM peak here: {peak:.0f} GFLOP/s ({args.threads} threads)", flush=True)
    for config in args.demo_configs:
        in_child(demo_part, config, args.steps, args.threads, peak)
    if not args.quick:
        for variant in args.paper_variants:
            in_child(paper_part, variant, args.paper_window, args.threads, peak)


if __name__ == "__main__":
    main()
