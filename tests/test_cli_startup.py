"""Start-up of the commands every README line pays (issue 16): ``seq2exp --help`` and ``seq2exp
example-args`` run through the real entry point (`cli.main`, warnings filter included) import neither
torch nor Lightning. Checked by module in a fresh interpreter, never by time."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRAINING_STACK = ("torch", "lightning", "pytorch_lightning")


def loaded_after_main(argv: list[str], home: Path) -> tuple[list[str], str]:
    """Run ``seq2exp ARGV`` as the console script does, in a fresh interpreter; returns which of
    `TRAINING_STACK` it imported and what it printed."""
    script = ("import json, sys\nfrom kipoi_seq2exp.cli import main\ntry:\n    main(sys.argv[1:])\n"
              "except SystemExit:\n    pass\n"
              f"print(json.dumps(sorted(m for m in {TRAINING_STACK!r} if m in sys.modules)), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True,
                          env={**os.environ, "HOME": str(home)})
    return json.loads(done.stderr.splitlines()[-1]), done.stdout


def test_help_imports_no_training_stack(tmp_path):
    loaded, out = loaded_after_main(["--help"], tmp_path)
    assert "example-args" in out and loaded == []


@pytest.mark.parametrize("member", ["Seq2Exp/Demo-soft", "Seq2Exp/K562"])
def test_example_args_prints_the_arguments_without_the_training_stack(member, tmp_path):
    loaded, out = loaded_after_main(["example-args", member], tmp_path)
    assert Path(json.loads(out)["fasta_file"]).is_file() and loaded == []
