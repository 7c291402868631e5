"""Cost of in-silico mutagenesis (issue 19): ISM of 1 kb (3,000 substitutions) on a 20-kb member, as a
ratio to one forward pass of the same window, both measured in this process (a shared machine's
load cancels out of the ratio, not out of the seconds: the ISM runs in 100-bp pieces with one timed
forward after each, and the ratio takes their median). Target: <= 60x.

Also, side by side on the same 128 mutants: the reused DNA stem (`LocalStem`) against the stem
recomputed over the whole window, to show what the reuse buys.

    python benchmarks/ism_cost.py                       # K562 (20 kb), first example gene
    python benchmarks/ism_cost.py --batch 128 --threads 2
"""
from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "ism_cost.md"
#: ISM runs in pieces of this many bases, one forward timed after each: the load moves both alike.
PIECE = 100


def seconds(work, repeats: int) -> float:
    """Median wall seconds of ``work()`` over ``repeats`` runs, after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", default="K562")
    parser.add_argument("--batch", type=int, default=64, help="mutated windows per forward")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--length", type=int, default=1_000, help="bases mutated (3 alternatives each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import kipoi

    import kipoi_seq2exp.interpret.attribution as attribution
    from kipoi_seq2exp.predict import predict_genes, stack_inputs
    from kipoi_seq2exp.zoo.source import example_dataloader_args

    model = kipoi.get_model(str(REPO / "model_zoo" / "Seq2Exp" / args.member), source="dir")
    dataset = model.default_dataloader(**example_dataloader_args(f"Seq2Exp/{args.member}"))
    prediction = next(predict_genes(model, dataset, progress=False, indices=[0]))
    one = stack_inputs([prediction.inputs])
    middle = model.window // 2
    forwards, ism, mutants = [seconds(lambda: model.predict(one), repeats=3)], 0.0, 0
    for first in range(middle - args.length // 2, middle + args.length // 2, PIECE):
        start = time.perf_counter()
        deltas = attribution.in_silico_mutagenesis(model, prediction, (first, first + PIECE), args.batch,
                                                   progress=False)
        ism += time.perf_counter() - start
        mutants += int(np.isfinite(deltas).sum() - (deltas == 0).sum())
        forwards.append(seconds(lambda: model.predict(one), repeats=1))
    forward = float(np.median(forwards))

    seq = prediction.inputs["seq"]
    edits = attribution.substitutions(seq, (middle, middle + 43))[:128]
    batch = stack_inputs([{**prediction.inputs, "seq": attribution.mutate(seq, p, b)} for p, b in edits])

    def batch_with(reuse: bool):
        with attribution.reused_stem(model.model, seq) if reuse else nullcontext():
            return model.predict(batch).expression

    reused, whole = seconds(lambda: batch_with(True), 3), seconds(lambda: batch_with(False), 3)
    same = torch.equal(batch_with(True), batch_with(False))
    lines = [f"# ISM cost, Seq2Exp/{args.member} ({model.window:,}-bp window), gene "
             f"{dataset.windows.gene_list[0].gene_id}",
             "",
             f"threads {args.threads}, {args.batch} mutants per forward; machine: 2-core AVX-512 CPU shared with "
             f"another experiment (seconds vary, ratios are measured side by side in one process)",
             "",
             "| measurement | seconds | ratio |",
             "|---|---|---|",
             f"| one forward of the window (batch 1, median of {len(forwards)} timings between the ISM pieces) | "
             f"{forward:.3f} | 1 |",
             f"| ISM of {args.length:,} bp ({mutants:,} mutants) | {ism:.1f} | **{ism / forward:.1f}x** one forward "
             f"(target <= 60x) |",
             f"| 128 mutants, stem reused (median of 3) | {reused:.2f} | {reused / forward / 128:.3f} forwards "
             f"per mutant |",
             f"| 128 mutants, stem over the whole window | {whole:.2f} | {whole / forward / 128:.3f} forwards "
             f"per mutant |",
             "",
             f"stem reuse: {whole / reused:.2f}x faster per batch; predictions bitwise equal: {same}"]
    text = "\n".join(lines) + "\n"
    print(text)
    from kipoi_seq2exp.atomic import write_text_atomic

    write_text_atomic(RESULT, text)


if __name__ == "__main__":
    main()
