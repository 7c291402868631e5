"""GPU check of the selective-scan backends (issue 22), every number measured side by side in one run.

Prints, for each scan path there is (chunked PyTorch, Triton, mamba-ssm where installed):
- correctness against the float64 reference on a small shape (forward and every gradient; float32
  and bfloat16 inputs, tolerances printed with the errors), and Triton's right-to-left scan;
- the scan call at B 1, L 200,000, D 256 and 512, N 16: forward and forward+backward in ms, and
  the effective bytes/s (the bytes the call must move at least, over its time) as a share of the
  device's copy bandwidth, measured in the same run;
- paper-soft and paper-hard forward at 200 kb (B 1 and 8, float32 and bf16 autocast), the
  paper-soft training step (B 1) and the demo training step (``demo_soft``: preset cpu_soft,
  20 kb, batch 8), both in bf16 autocast (the trainer's GPU precision) and float32, each path
  forced with ``set_scan_backend``; ms and peak GPU memory (torch.cuda.max_memory_allocated);
- ratios triton / mamba-ssm and triton / chunked (below 1: Triton faster).

About 5 minutes on one GPU: no row starts after ``--budget`` seconds (it is printed as not
measured), so the paths under test come first in each row and the slow chunked fallback last.
Without CUDA it prints one line and exits 0.

    python benchmarks/gpu_check.py [--budget 290] [--out benchmarks/results/gpu_check.md]
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kipoi_seq2exp.ops import triton_scan  # noqa: E402

dispatch = importlib.import_module("kipoi_seq2exp.ops.selective_scan")  # the package exports a same-named function

ARG_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
TOLERANCES = {torch.float32: (1e-4, 1e-3), torch.bfloat16: (1e-2, 5e-2)}  # forward, gradients: max|err| / max|ref|
LABELS = {"chunked": "chunked", "triton": "triton", "cuda": "mamba-ssm"}
DEVICE = "cuda"
SCAN_LENGTH = 200_000
CHECK_SHAPE = dict(batch=2, d_inner=64, d_state=16, length=2048)


class Report:
    """Lines printed as they come and kept for ``--out``; a deadline after which rows are skipped."""

    def __init__(self, budget_s: float):
        self.deadline = time.perf_counter() + budget_s
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def time_left(self) -> bool:
        return time.perf_counter() < self.deadline


def backends() -> list[str]:
    names = ["chunked"]
    if triton_scan.is_available():
        names.append("triton")
    if dispatch._cuda_available():
        names.append("cuda")
    return names


def timed(fn: Callable[[], object], repeats: int = 3, max_s: float = 2.0) -> float:
    """Best wall time in ms after one warm-up call (compilation, autotuning, allocator)."""
    fn()
    torch.cuda.synchronize()
    best, spent = float("inf"), 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > max_s:
            break
    return best * 1e3


def measured(fn: Callable[[], object], **kw) -> tuple[Optional[float], float, str]:
    """(ms or None, peak GB allocated during it, note)."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        ms = timed(fn, **kw)
        note = ""
    except torch.cuda.OutOfMemoryError:
        ms, note = None, "out of memory"
    except Exception as err:  # a backend that cannot run this call: say why, go on
        ms, note = None, f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
    return ms, torch.cuda.max_memory_allocated() / 2**30, note


def copy_bandwidth() -> float:
    """Bytes/s of a 1 GiB device-to-device copy (read + write counted)."""
    x = torch.empty(2**28, device=DEVICE)
    y = torch.empty_like(x)
    ms = timed(lambda: y.copy_(x), repeats=10)
    return 2 * x.numel() * 4 / (ms / 1e3)


def scan_inputs(batch: int, d_inner: int, d_state: int, length: int, dtype: torch.dtype, seed: int = 0) -> dict:
    g = torch.Generator(device=DEVICE).manual_seed(seed)

    def r(*shape, scale=1.0, offset=0.0):
        return (torch.randn(*shape, generator=g, device=DEVICE) * scale + offset).to(dtype)

    return dict(u=r(batch, d_inner, length), delta=r(batch, d_inner, length, scale=0.5, offset=-1.0),
                A=-torch.rand(d_inner, d_state, generator=g, device=DEVICE).mul(3).add(0.05),
                B=r(batch, d_state, length), C=r(batch, d_state, length), D=torch.randn(d_inner, device=DEVICE),
                z=r(batch, d_inner, length), delta_bias=torch.randn(d_inner, device=DEVICE) * 0.3)


def forward_and_grads(fn, x: dict, dout: torch.Tensor, autocast: bool = False,
                      **kw) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output and the gradients of all eight inputs; ``autocast``: the call under bf16 autocast, as
    the model makes it (chunked needs it to mix bfloat16 inputs with a float32 A)."""
    leaves = [x[k].detach().requires_grad_() for k in ARG_NAMES]
    with torch.autocast(DEVICE, torch.bfloat16, enabled=autocast):
        out = fn(*leaves, delta_softplus=True, **kw)
    return out.detach(), list(torch.autograd.grad(out, leaves, dout.to(out.dtype)))


def relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()


def check_correctness(say: Report, names: list[str]) -> None:
    shape = ", ".join(f"{k} {v:,}" for k, v in CHECK_SHAPE.items())
    say(f"## Correctness vs the float64 reference ({shape}; max |error| / max |reference|)\n")
    say("| path | inputs | forward | worst gradient (which) | tolerance fwd / grad | ok |")
    say("|---|---|---|---|---|---|")
    reference = dispatch.selective_scan_reference
    for dtype in (torch.float32, torch.bfloat16):
        x = scan_inputs(**CHECK_SHAPE, dtype=dtype, seed=1)
        dout = torch.randn(x["u"].shape, device=DEVICE, dtype=torch.float64)
        want, want_grads = forward_and_grads(reference, {k: v.double() for k, v in x.items()}, dout)
        flipped = {k: v.double().flip(-1) if v.dim() == 3 else v.double() for k, v in x.items()}
        want_rev, want_rev_grads = forward_and_grads(reference, flipped, dout.flip(-1))
        runs = [(LABELS[name], lambda *a, name=name, **kw: dispatch.selective_scan(*a, backend=name, **kw), {},
                 want, want_grads) for name in names]
        if "triton" in names:
            runs.append(("triton, reverse=True", triton_scan.selective_scan_triton, dict(reverse=True),
                         want_rev.flip(-1), [g.flip(-1) if g.dim() == 3 else g for g in want_rev_grads]))
        for label, fn, kw, ref_out, ref_grads in runs:
            try:
                out, grads = forward_and_grads(fn, x, dout, autocast=dtype == torch.bfloat16, **kw)
            except Exception as err:
                say(f"| {label} | {str(dtype)[6:]} | failed: {type(err).__name__}: {str(err).splitlines()[0][:80]} | | | |")
                continue
            fwd = relative(out, ref_out)
            errors = {k: relative(g, r) for k, g, r in zip(ARG_NAMES, grads, ref_grads)}
            worst = max(errors, key=errors.get)
            tol_f, tol_g = TOLERANCES[dtype]
            ok = fwd < tol_f and errors[worst] < tol_g
            say(f"| {label} | {str(dtype)[6:]} | {fwd:.1e} | {errors[worst]:.1e} (d{worst}) | {tol_f:g} / {tol_g:g} | "
                f"{'yes' if ok else '**NO**'} |")
    say("\nThe reference runs on the inputs' own (rounded) values; bfloat16 calls run under bf16 autocast as "
        "in the model. Chunked computes in the inputs' dtype, Triton and mamba-ssm in float32.\n")


def ratio_cells(ms: dict[str, Optional[float]]) -> str:
    tri = ms.get("triton")
    cells = []
    for other in ("cuda", "chunked"):
        cells.append(f"{tri / ms[other]:.2f}" if tri and ms.get(other) else "")
    return " | ".join(cells)


def scan_speed(say: Report, names: list[str], bandwidth: float) -> None:
    say(f"## Scan call, B 1, L {SCAN_LENGTH:,}, N 16, float32 (ms; effective GB/s and share of copy bandwidth)\n")
    say("| D | pass | " + " | ".join(LABELS[n] for n in names) + " | triton / mamba-ssm | triton / chunked |")
    say("|---|---|" + "---|" * len(names) + "---|---|")
    batch, d_state, length, elt = 1, 16, SCAN_LENGTH, 4
    for d_inner in (256, 512):
        x = scan_inputs(batch, d_inner, d_state, length, torch.float32)
        forward_bytes = (4 * d_inner + 2 * d_state) * batch * length * elt  # u, delta, z, B, C in; y out
        both_bytes = forward_bytes + (7 * d_inner + 4 * d_state) * batch * length * elt  # + dy, inputs, grads
        for label, grad, nbytes in (("forward", False, forward_bytes), ("fwd+bwd", True, both_bytes)):
            ms, cells = {}, []
            for name in names:
                if not say.time_left():
                    cells.append("not measured (time budget)")
                    continue
                leaves = {k: v.detach().requires_grad_(grad) for k, v in x.items()}

                def call(name=name, leaves=leaves, grad=grad):
                    with torch.set_grad_enabled(grad):
                        y = dispatch.selective_scan(**leaves, delta_softplus=True, backend=name)
                        if grad:
                            torch.autograd.grad(y, list(leaves.values()), torch.ones_like(y))

                ms[name], peak, note = measured(call)
                cells.append(note or f"{ms[name]:.2f} ({nbytes / (ms[name] / 1e3) / 1e9:.0f} GB/s, "
                                     f"{nbytes / (ms[name] / 1e3) / bandwidth:.0%}; {peak:.1f} GB)")
            say(f"| {d_inner} | {label} | " + " | ".join(cells) + f" | {ratio_cells(ms)} |")
        del x
    say(f"\nEffective bytes: forward (4 D + 2 N) B L x 4 (u, delta, z, B, C read, y written); fwd+bwd adds "
        f"(7 D + 4 N) B L x 4. Copy bandwidth measured here: {bandwidth / 1e9:.0f} GB/s. Peak GB: "
        "torch.cuda.max_memory_allocated during the call, inputs included.\n")


def model_inputs(cfg, batch: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator(device=DEVICE).manual_seed(0)
    seq = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, cfg.window), generator=g, device=DEVICE), 4).float()
    signals = torch.rand(batch, cfg.window, cfg.n_signals, generator=g, device=DEVICE)
    return seq, signals, torch.randn(batch, cfg.n_gene_features, generator=g, device=DEVICE)


def model_rows(say: Report, names: list[str]) -> None:
    from kipoi_seq2exp.model import Seq2Exp, paper_hard, paper_soft
    from kipoi_seq2exp.train.config import TrainConfig, load_run_config
    from kipoi_seq2exp.train.optim import build_optimizer

    say("## Whole model (ms; peak GPU memory GB), each scan path forced with set_scan_backend\n")
    say("| run | " + " | ".join(LABELS[n] for n in names) + " | triton / mamba-ssm | triton / chunked |")
    say("|---|" + "---|" * len(names) + "---|---|")

    def row(label: str, make_call: Callable[[], Callable[[], object]]) -> None:
        ms, cells = {}, []
        for name in ("triton", "cuda", "chunked"):  # the paths under test first, the slow fallback last
            if name not in names:
                continue
            if not say.time_left():
                cells.append((name, "not measured (time budget)"))
                continue
            dispatch.set_scan_backend(name)
            try:
                ms[name], peak, note = measured(make_call(), repeats=2)
            finally:
                dispatch.set_scan_backend(None)
            cells.append((name, note or f"{ms[name]:.0f} ({peak:.1f})"))
        text = dict(cells)
        say(f"| {label} | " + " | ".join(text[n] for n in names) + f" | {ratio_cells(ms)} |")

    def forward(model, batch, bf16):
        inputs = model_inputs(model.cfg, batch)

        def call():
            with torch.no_grad(), torch.autocast(DEVICE, torch.bfloat16, enabled=bf16):
                model(*inputs)
        return call

    def train_step(model, train_cfg, batch, bf16):
        optimiser = build_optimizer(model, train_cfg)
        inputs = model_inputs(model.cfg, batch)
        target = torch.zeros(batch, device=DEVICE)

        def call():
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(DEVICE, torch.bfloat16, enabled=bf16):  # bf16: the trainer's GPU precision
                loss = model.loss(model(*inputs), target).total
            loss.backward()
            optimiser.step()
        return call

    torch.set_float32_matmul_precision("high")  # as the trainer on a GPU
    for make in (paper_soft, paper_hard):
        model = Seq2Exp(make()).to(DEVICE).eval()
        for batch in (1, 8):
            for bf16 in (False, True):
                row(f"{make.__name__} forward, 200 kb, B {batch}, {'bf16 autocast' if bf16 else 'float32'}",
                    lambda: forward(model, batch, bf16))
        if make is paper_soft:
            model.train()
            for bf16 in (True, False):
                row(f"paper_soft training step (AdamW), 200 kb, B 1, {'bf16 autocast' if bf16 else 'float32'}",
                    lambda: train_step(model, TrainConfig(), 1, bf16))
        del model
    demo = load_run_config("demo_soft")
    model = Seq2Exp(demo.model).to(DEVICE).train()
    for bf16 in (True, False):
        row(f"demo_soft training step ({demo.model.window // 1000} kb, B {demo.train.batch_size}, "
            f"{'bf16 autocast' if bf16 else 'float32'})",
            lambda: train_step(model, demo.train, demo.train.batch_size, bf16))
    say("\nForward rows: best of 2 after a warm-up call; training rows: one optimiser step (forward, backward, "
        "AdamW), best of 2 after a warm-up step.\n")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=290.0, help="seconds; rows after it are not measured")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing measured (run it on a GPU machine)")
        return 0
    say = Report(args.budget)
    names = backends()
    props = torch.cuda.get_device_properties(0)
    bandwidth = copy_bandwidth()
    say(f"# Selective-scan GPU check: {props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, "
        f"triton {_version('triton')}, mamba-ssm {_version('mamba_ssm')}\n")
    say(f"Scan paths here: {', '.join(LABELS[n] for n in names)}; auto choice on CUDA: "
        f"{LABELS.get(dispatch.resolve_backend(torch.device('cuda')), '?')}. "
        f"Copy bandwidth {bandwidth / 1e9:.0f} GB/s.\n")
    check_correctness(say, names)
    scan_speed(say, names, bandwidth)
    model_rows(say, names)
    if args.out:
        args.out.write_text("\n".join(say.lines) + "\n")
    return 0


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "not installed"


if __name__ == "__main__":
    raise SystemExit(main())
