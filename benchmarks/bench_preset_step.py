"""Optimiser steps per second of the CPU-trainable preset (``seq2exp train --config demo_soft``),
the package as installed beside an "old path", side by side in one run.

The old path is whatever ``--old-pythonpath DIR`` puts in front of the package's dependencies,
e.g. hictkpy 1.4.0 (``pip install --no-deps --target DIR hictkpy==1.4.0``), whose import starts a
thread that keeps one core busy for the life of the process. Each path trains twice, ``--short``
and ``--long`` steps, in fresh processes; the difference of the two wall times is the time of
``long - short`` optimiser steps, start-up and the first steps excluded.

    python benchmarks/bench_preset_step.py --old-pythonpath /tmp/hk14

Prints and writes ``benchmarks/results/bench_preset_step.md``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def train_seconds(steps: int, pythonpath: str | None, out_dir: str) -> float:
    """Wall seconds of one ``seq2exp train --config demo_soft`` run of ``steps`` steps, no validation."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "kipoi_seq2exp", "train", "--config", "demo_soft",
               "--set", f"train.max_steps={steps}", "--set", "train.warmup_steps=5",
               "--set", "train.val_every_n_steps=100000", "--set", "train.checkpoint_every_n_steps=100000",
               "--set", f"train.output_dir={out_dir}"]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def steps_per_second(short: int, long: int, pythonpath: str | None) -> float:
    with tempfile.TemporaryDirectory() as work:
        elapsed = train_seconds(long, pythonpath, f"{work}/long") - train_seconds(short, pythonpath, f"{work}/short")
    return (long - short) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-pythonpath", required=True, metavar="DIR", help="what the old path puts first")
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--long", type=int, default=100)
    args = parser.parse_args(argv)
    new = steps_per_second(args.short, args.long, None)
    old = steps_per_second(args.short, args.long, args.old_pythonpath)
    table = ("| path | optimiser steps / s (demo_soft, batch 8, 20-kb windows) |\n|---|---|\n"
             f"| old (`PYTHONPATH={args.old_pythonpath}`) | {old:.2f} |\n| new (as installed) | {new:.2f} |\n\n"
             f"New / old: **{new / old:.2f}x** ({args.long - args.short} steps each, start-up excluded; "
             f"{os.cpu_count()} CPUs).\n")
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_preset_step.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
