"""Issue 17, "tracebacks instead of messages": each bad input a user can give (empty or hostile
checkpoint, broken YAML, a value of the wrong type, a misspelt member, ...) ends in one line that
names the file / key and the fix. Every input is written here, into tmp_path."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import FIXTURE
from kipoi_seq2exp.airs import CheckpointError as AirsCheckpointError
from kipoi_seq2exp.airs import import_airs
from kipoi_seq2exp.cli import main
from kipoi_seq2exp.model import ModelConfig
from kipoi_seq2exp.train.config import ConfigError, TrainConfig, load_run_config
from kipoi_seq2exp.train.export import CheckpointError, load_exported, read_checkpoint

REPO = Path(__file__).resolve().parents[1]


def one_error_line(capsys, command: str, code: int) -> str:
    """``seq2exp COMMAND`` exited 2 with a single ``seq2exp COMMAND: error: ...`` line, no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"seq2exp {command}: error: "), err
    return lines[0]


# ------------------------------------------------------------------ 7: empty / truncated checkpoint
def test_empty_and_truncated_checkpoints_name_the_file(tmp_path, capsys):
    empty = tmp_path / "best.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"best\.ckpt: the checkpoint file is empty \(0 bytes\).*Fix: "):
        read_checkpoint(empty)
    with pytest.raises(AirsCheckpointError, match=r"best\.ckpt: the checkpoint file is empty \(0 bytes\).*Fix: re-d"):
        import_airs(empty, "soft", tmp_path / "member")
    torch.save({"state_dict": {"model.w": torch.zeros(1000)}}, tmp_path / "full.ckpt")
    data = (tmp_path / "full.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: not a readable PyTorch checkpoint \(.*\); the file is trunc"):
        read_checkpoint(tmp_path / "cut.ckpt")
    code = main(["export", str(empty), "--cell-type", "K562", "--out", str(tmp_path / "o")])
    line = one_error_line(capsys, "export", code)
    assert "empty (0 bytes)" in line and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ 8: invalid YAML
BROKEN_YAML = "model:\n  preset: tiny_soft\ntrain:\n  max_steps: 10\n   lr: 0.001\n"


def test_invalid_yaml_names_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN_YAML)
    with pytest.raises(ConfigError, match=r"bad\.yaml, line 5, column 6: not valid YAML \(.+\)\. Fix: "):
        load_run_config(bad)
    line = one_error_line(capsys, "train", main(["train", "--config", str(bad)]))
    assert "<unicode string>" not in line and "line 5" in line
    with pytest.raises(ConfigError, match=r"override 'train.max_steps=\[1', line 1, column \d+: not valid YAML"):
        load_run_config("demo_soft", ["train.max_steps=[1"])
    (tmp_path / "config.yaml").write_text("d_model: 16\n  n_layers_generator: 2\n")
    with pytest.raises(ValueError, match=r"config\.yaml, line 2, column \d+: not valid YAML"):
        ModelConfig.from_yaml(tmp_path / "config.yaml")


# ------------------------------------------------------------------ 10: wrong-type values
DATA = "data:\n  fasta: g.fa\n  gene_table: g.tsv\n"


@pytest.mark.parametrize("text,overrides,expected", [
    (DATA + "model:\n  preset: tiny_soft\ntrain:\n  max_steps: abc\n", [],
     r"section 'train': max_steps must be an integer, got 'abc' \(text\)\. Fix: .*max_steps: 50000"),
    (DATA + "model:\n  preset: tiny_soft\n", ["train.max_steps=abc"],
     r"overrides \['train.max_steps=abc'\], section 'train': max_steps must be an integer, got 'abc'"),
    ("model:\n  preset: tiny_soft\n  d_model: 64x\n", [],
     r"section 'model': d_model must be an integer, got '64x' \(text\)"),
    ("model:\n  preset: tiny_soft\n  d_model: 64.5\n", [],
     r"section 'model': d_model must be an integer, got 64\.5 \(a number\)"),
    ("model:\n  preset: tiny_soft\n  signals:\n  - {name: dnase, constant: high, weight: 1}\n", [],
     r"signals\[0\]: constant must be a number, got 'high'"),
    (DATA + "  promoter_flank: wide\nmodel:\n  preset: tiny_soft\n", [],
     r"section 'data': DataConfig: promoter_flank must be an integer, got 'wide'"),
    (DATA + "model:\n  preset: tiny_soft\ntrain:\n  deterministic: maybe\n", [],
     r"deterministic must be true or false, got 'maybe'"),
])
def test_wrong_type_value_names_key_expected_type_and_value(tmp_path, text, overrides, expected):
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_run_config(tmp_path / "run.yaml", overrides)
    assert "not supported between" not in str(caught.value)


def test_wrong_type_in_an_exported_model_config_and_in_code(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text('d_model: "64"\n')
    with pytest.raises(ValueError, match=r"config\.yaml: invalid model config: d_model must be an integer, got '64' "
                                         r"\(text\)\. Fix: write an integer \(without quotes\), e\.g\. `d_model: 128`"):
        ModelConfig.from_yaml(tmp_path / "config.yaml")
    with pytest.raises(ValueError, match=r"TrainConfig: max_steps must be an integer, got 'abc'"):
        TrainConfig(max_steps="abc")
    line = one_error_line(capsys, "train", main(["train", "--config", "demo_soft", "--set", "train.lr=fast"]))
    assert "lr must be a number, got 'fast' (text)" in line


# ------------------------------------------------------------------ 11: checkpoint holding code
class _Exec:
    """Pickles as a call of builtins.exec that would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_refused_pickle_names_the_code_and_says_nothing_ran(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    torch.save({"state_dict": {}, "hyper_parameters": {"model": _Exec(marker)}}, tmp_path / "exec.ckpt")
    module = types.ModuleType("lab_private")
    module.LabConfig = type("LabConfig", (), {"__module__": "lab_private"})
    sys.modules["lab_private"] = module
    try:
        torch.save({"state_dict": {}, "hyper_parameters": module.LabConfig()}, tmp_path / "class.ckpt")
    finally:
        del sys.modules["lab_private"]
    for name, refused in (("exec.ckpt", "builtins.exec"), ("class.ckpt", "lab_private.LabConfig")):
        with pytest.raises(CheckpointError) as caught:
            read_checkpoint(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: refused: the checkpoint holds Python code objects ({refused})")
        assert "nothing from the file was executed" in message and "seq2exp import-airs" in message
        assert "\x1b" not in message and "weights_only" not in message and "Fix: " in message
    line = one_error_line(capsys, "export", main(["export", str(tmp_path / "exec.ckpt"), "--cell-type", "K562",
                                                  "--out", str(tmp_path / "o")]))
    assert "builtins.exec" in line
    assert not marker.exists()


# ------------------------------------------------------------------ 12: misspelt member
def test_misspelt_member_lists_the_members_through_kipoi(isolated_home):
    import kipoi

    from kipoi_seq2exp.zoo.source import ZooError, register_source

    register_source()
    with pytest.raises(ZooError, match=r"unknown model 'Seq2Exp/K526' in kipoi source 'seq2exp'; available: "
                                       r"\['Seq2Exp/K562', 'Seq2Exp/GM12878'.*Fix: use one of these names"):
        kipoi.get_model("Seq2Exp/K526", source="seq2exp")
    with pytest.raises(ValueError, match="doesn't exist"):  # other groups keep kipoi's message
        kipoi.get_model("Other/K526", source="seq2exp")


# ------------------------------------------------------------------ 15: example files copied out
def run_seq2exp(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "kipoi_seq2exp", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_get_example_copies_the_example_files(tmp_path, isolated_home):
    done = run_seq2exp(["get-example", "Seq2Exp/K562", "-o", "ex"], isolated_home, tmp_path)
    assert done.returncode == 0, done.stderr
    args = json.loads(done.stdout.strip().splitlines()[-1])
    files = {key: Path(value) for key, value in args.items() if isinstance(value, str) and "/" in value}
    assert set(files) == {"fasta_file", "gene_table", "dnase_bigwig", "mrna_features"}
    assert all(path.parent == tmp_path / "ex" and path.stat().st_size > 0 for path in files.values())
    assert (tmp_path / "ex" / "hg38.chr22.fa.gz.fai").is_file()  # the FASTA's index travels with it


# ------------------------------------------------------------------ 16: import-airs reads the window
def test_import_airs_takes_the_window_from_seq_range(tmp_path, capsys):
    member = import_airs(FIXTURE / "soft.ckpt.pt", "soft", tmp_path / "K562")
    assert load_exported(member).cfg.window == 6_000  # the fixture's seq_range; was 200,000
    code = main(["import-airs", str(FIXTURE / "soft.ckpt.pt"), "--variant", "soft", "--out", str(tmp_path / "o"),
                 "--window", "200000"])
    line = one_error_line(capsys, "import-airs", code)
    assert "seq_range = 6,000 bp but --window is 200,000" in line and "Fix: leave out --window" in line
    assert not (tmp_path / "o").exists()


def test_import_airs_reads_lightning_attribute_dict_hparams(tmp_path):
    """Lightning stores hyper_parameters as an AttributeDict (a dict subclass): unpickled as an inert
    placeholder, its items still give seq_range."""
    module = types.ModuleType("lightning_like")
    module.AttributeDict = type("AttributeDict", (dict,), {"__module__": "lightning_like"})
    sys.modules["lightning_like"] = module
    try:
        ckpt = torch.load(FIXTURE / "soft.ckpt.pt", weights_only=True)
        ckpt["hyper_parameters"] = module.AttributeDict(ckpt["hyper_parameters"])
        torch.save(ckpt, tmp_path / "soft.ckpt")
    finally:
        del sys.modules["lightning_like"]
    assert load_exported(import_airs(tmp_path / "soft.ckpt", "soft", tmp_path / "K562")).cfg.window == 6_000


# ------------------------------------------------------------------ 18: known third-party warnings
QUIET_SNIPPET = """
import logging
from kipoi_seq2exp.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
logging.basicConfig()
import kipoiseq  # its dataloaders carry a 'postprocessing' key kipoi logs as unrecognised, three times
logging.getLogger("kipoi_utils.external.related.mixins").warning("Unrecognized fields for DataLoaderDescription: {'x'}")
"""


def test_seq2exp_drops_exactly_the_known_kipoi_warnings(tmp_path, isolated_home):
    done = subprocess.run([sys.executable, "-c", QUIET_SNIPPET], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "HOME": str(isolated_home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "postprocessing" not in done.stderr and "pkg_resources" not in done.stderr
    assert "Unrecognized fields for DataLoaderDescription: {'x'}" in done.stderr  # other records still show
