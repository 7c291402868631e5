"""``seq2exp predict`` takes exactly one of --ckpt (the trainer's mode) and --member (member_predict's),
each refusing the other's options, with a one-line error; argparse itself no longer requires --ckpt."""
from __future__ import annotations

import pytest

from kipoi_seq2exp.cli import main
from kipoi_seq2exp.train.cli import main as train_main


@pytest.mark.parametrize("argv, message", [
    ([], "give --ckpt CKPT (a checkpoint of `seq2exp train`) or --member NAME|FOLDER"),
    (["--ckpt", "x.ckpt", "--member", "K562"], "--ckpt cannot go with --member"),
    (["--member", "K562", "--split", "test"], "--split cannot go with --member"),
    (["--ckpt", "x.ckpt", "--tracks", "DNase=x.bw", "--fasta", "g.fa"], "--tracks, --fasta cannot go with --ckpt"),
    (["--member", "K562"], "--member needs --fasta and --genes"),
])
def test_one_mode_at_a_time(argv, message, capsys):
    assert main(["predict", "--out", "x.tsv", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_trainers_own_entry_asks_for_a_checkpoint(capsys):
    assert train_main(["predict", "--out", "x.tsv"]) == 2
    assert "seq2exp predict: error: give --ckpt CKPT" in capsys.readouterr().err
