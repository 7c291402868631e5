"""Run configuration: one YAML file with three sections, ``model``, ``data`` and ``train``.

- ``model``: :class:`~kipoi_seq2exp.model.ModelConfig` keys, optionally starting from a named
  preset (``preset: paper_hard``) whose values the other keys override;
- ``data``: :class:`~kipoi_seq2exp.data.DataConfig` keys; relative paths are relative to the YAML
  file; ``window`` may be left out and then follows ``model.window``;
- ``train``: :class:`TrainConfig` keys.

Configs shipped with the package (``configs/*.yaml``) are found by name (``demo_soft``); dotted
overrides (``train.max_steps=100``) are applied on top. Every key is checked: a typo is an error
naming the file, the section and the key, never a silently ignored setting.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union, get_type_hints

import yaml

from ..atomic import write_text_atomic
from ..config_io import check_field_types, check_instance_types, parse_yaml, read_yaml
from ..data.config import DataConfig
from ..data.errors import DataInputError
from ..model import ModelConfig, preset

SECTIONS = ("model", "data", "train")
CONFIG_DIR = Path(__file__).parent / "configs"
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu")


class ConfigError(ValueError):
    """A run configuration that cannot work; the message names the file, section, key and fix."""


@dataclass
class TrainConfig:
    """Optimisation, checkpointing and hardware settings (defaults: the released recipe).

    ``max_steps`` counts optimiser steps; the learning rate ramps from ``warmup_start_lr`` to ``lr``
    over ``warmup_steps``, then follows a half cosine to ``min_lr`` at ``max_steps``.
    ``precision: auto`` is bf16 autocast on a GPU and float32 on the CPU. ``limit_val_batches``: a
    float is a fraction of the validation set, an integer a number of batches.
    ``output_dir`` receives ``checkpoints/best.ckpt`` (lowest validation MSE), ``checkpoints/last.ckpt``
    (every ``checkpoint_every_n_steps`` and at the end), ``config.yaml`` and the CSV logs.
    """

    seed: int = 2222
    max_steps: int = 50_000
    batch_size: int = 8
    eval_batch_size: int = 0
    lr: float = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 1e-6
    warmup_steps: int = 5_000
    warmup_start_lr: float = 1e-5
    min_lr: float = 1e-4
    gradient_clip: float = 1.0
    precision: str = "auto"
    accelerator: str = "auto"
    val_every_n_steps: int = 1_000
    limit_val_batches: float = 1.0
    checkpoint_every_n_steps: int = 500
    log_every_n_steps: int = 50
    num_workers: int = 0
    deterministic: bool = True
    #: train on the reverse complement of a random half of each batch (DNA reversed and complemented,
    #: signals reversed): enhancer grammar reads on both strands, so motif filters see twice the data
    rc_augment: bool = False
    #: the KL weight ramps linearly from 0 to model.kl_weight over these optimiser steps: at full
    #: weight from step 0 the KL flattens the DNA generator before the predictor has learned what a
    #: useful mask is (posterior collapse, measured: README "Why the mask did not learn")
    kl_warmup_steps: int = 0
    output_dir: str = "runs/seq2exp"

    def __post_init__(self) -> None:
        check_instance_types(self, "TrainConfig")  # before validate() compares an 'abc' with 0
        self.betas = [float(b) for b in self.betas]
        self.validate()

    @property
    def resolved_eval_batch_size(self) -> int:
        return self.eval_batch_size or self.batch_size

    def validate(self) -> None:
        checks = [
            (self.max_steps > 0, f"max_steps = {self.max_steps}: must be positive"),
            (self.batch_size > 0 and self.eval_batch_size >= 0,
             f"batch_size = {self.batch_size}, eval_batch_size = {self.eval_batch_size}: need batch_size > 0 and "
             "eval_batch_size >= 0 (0 = batch_size)"),
            (0 <= self.warmup_steps < self.max_steps,
             f"warmup_steps = {self.warmup_steps}: must lie in [0, max_steps = {self.max_steps})"),
            (self.lr > 0 and 0 <= self.min_lr <= self.lr and 0 <= self.warmup_start_lr <= self.lr,
             f"lr = {self.lr}, min_lr = {self.min_lr}, warmup_start_lr = {self.warmup_start_lr}: need lr > 0 and "
             "0 <= min_lr, warmup_start_lr <= lr"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"betas = {self.betas}: need two numbers in [0, 1)"),
            (self.weight_decay >= 0 and self.gradient_clip >= 0,
             f"weight_decay = {self.weight_decay}, gradient_clip = {self.gradient_clip}: must be >= 0 (0 = off)"),
            (self.precision in PRECISIONS, f"precision = {self.precision!r}: use one of {PRECISIONS}"),
            (self.accelerator in ACCELERATORS, f"accelerator = {self.accelerator!r}: use one of {ACCELERATORS}"),
            (min(self.val_every_n_steps, self.checkpoint_every_n_steps, self.log_every_n_steps) > 0,
             "val_every_n_steps, checkpoint_every_n_steps and log_every_n_steps must be positive"),
            (self.limit_val_batches > 0,
             f"limit_val_batches = {self.limit_val_batches}: a fraction (1.0 = all) or a number of batches, > 0"),
            (self.num_workers >= 0, f"num_workers = {self.num_workers}: must be >= 0"),
            (self.kl_warmup_steps >= 0, f"kl_warmup_steps = {self.kl_warmup_steps}: must be >= 0 (0 = off)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunConfig:
    """The three sections of a run; ``source`` says where it was read from (for messages)."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    source: str = field(default="<dict>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "data": self.data.to_dict(), "train": self.train.to_dict()}

    def to_yaml(self, path: Union[str, os.PathLike]) -> None:
        """Write atomically: a crash never leaves half a config."""
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>",
                  base_dir: Optional[Union[str, os.PathLike]] = None) -> "RunConfig":
        """Build and cross-check the three sections; relative data paths resolve against ``base_dir``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping with sections {list(SECTIONS)}, got {type(data).__name__}")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {unknown}; a run config has the sections {list(SECTIONS)}")
        model = model_config_from_section(data.get("model") or {}, source)
        data_section = dict(data.get("data") or {})
        data_section.setdefault("window", model.window)
        data_cfg = data_config_from_section(data_section, source, base_dir)
        train = train_config_from_section(data.get("train") or {}, source)
        run = cls(model, data_cfg, train, source)
        run.check_consistency()
        return run

    def check_consistency(self) -> None:
        """The model must read what the data layer produces: same window, same channels in order."""
        if self.model.window != self.data.window:
            raise ConfigError(
                f"{self.source}: model.window ({self.model.window}) differs from data.window ({self.data.window}). "
                "Fix: remove data.window (it then follows model.window) or set both to the same length.")
        model_tracks = [s.name for s in self.model.signals]
        data_tracks = self.data.track_names
        if [_track_key(n) for n in model_tracks] != [_track_key(n) for n in data_tracks]:
            raise ConfigError(
                f"{self.source}: model.signals {model_tracks} and data.tracks {data_tracks} must name the same "
                "channels in the same order (the model's Beta prior of each channel is tied to its position). "
                "Fix: reorder or rename data.tracks, or set model.signals to match.")


def _track_key(name: str) -> str:
    """Channel names compare without case or punctuation: 'Hi-C' == 'hic', 'H3K27ac' == 'h3k27ac'."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


# ---------------------------------------------------------------------- sections
def _coerce_numbers(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads ``5e-4`` (no dot) as a string: turn such strings into the field's number type."""
    hints = get_type_hints(cls)
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and hints.get(key) in (float, int):
            try:
                number = float(value)
            except ValueError:
                continue
            out[key] = int(number) if hints[key] is int and number.is_integer() else number
    return out


def _reject_unknown(cls: type, values: dict[str, Any], where: str, extra: Sequence[str] = ()) -> None:
    known = {f.name for f in dataclasses.fields(cls)} | set(extra)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")


def model_config_from_section(section: dict[str, Any], source: str) -> ModelConfig:
    """ModelConfig from the ``model`` section: ``preset`` (optional) plus overriding keys."""
    where = f"{source}, section 'model'"
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping of model keys, got {section!r}")
    _reject_unknown(ModelConfig, section, where, extra=("preset",))
    values = _coerce_numbers(ModelConfig, section)
    check_field_types(ModelConfig, values, where, ConfigError)
    name = values.pop("preset", None)
    try:
        return preset(name, **values) if name else ModelConfig(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from err


def data_config_from_section(section: dict[str, Any], source: str,
                             base_dir: Optional[Union[str, os.PathLike]]) -> DataConfig:
    where = f"{source}, section 'data'"
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping of data keys, got {section!r}")
    missing = [key for key in _required_keys(DataConfig) if section.get(key) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: required key(s) {missing} not set. Fix: add them to the data section, or "
                          f"pass e.g. --set data.{missing[0]}=PATH")
    try:
        return DataConfig.from_dict(section, base_dir=base_dir)
    except (DataInputError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def train_config_from_section(section: dict[str, Any], source: str) -> TrainConfig:
    where = f"{source}, section 'train'"
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: expected a mapping of train keys, got {section!r}")
    _reject_unknown(TrainConfig, section, where)
    values = _coerce_numbers(TrainConfig, section)
    check_field_types(TrainConfig, values, where, ConfigError)
    try:
        return TrainConfig(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from err


# ---------------------------------------------------------------------- files and overrides
def packaged_configs() -> dict[str, Path]:
    """Configs shipped with the package, by name (file name without ``.yaml``)."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def resolve_config_path(name_or_path: Union[str, os.PathLike]) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = packaged_configs()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise ConfigError(f"config {str(name_or_path)!r} is neither a file nor a packaged config; "
                      f"packaged configs: {sorted(shipped)}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.max_steps=100"`` -> (["train", "max_steps"], 100); the value is read as YAML."""
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"override {text!r}: expected SECTION.KEY=VALUE, e.g. train.max_steps=100")
    if path[0] not in SECTIONS:
        raise ConfigError(f"override {text!r}: unknown section {path[0]!r}; sections are {list(SECTIONS)}")
    return path, parse_yaml(value, f"override {text!r}", ConfigError)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Copy of ``raw`` with each dotted override set (list items by index: data.tracks.0.path=...)."""
    out = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for text in overrides:
        path, value = parse_override(text)
        node = out.setdefault(path[0], {})
        for key in path[1:-1]:
            node = _child(node, key, text)
        last = path[-1]
        if isinstance(node, list):
            node[_list_index(node, last, text)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(f"override {text!r}: {'.'.join(path[:-1])} is a value, not a section")
    return out


def _child(node: Any, key: str, text: str) -> Any:
    """One level down an override's path; a missing mapping is created (the section checks its keys)."""
    if isinstance(node, list):
        return node[_list_index(node, key, text)]
    if not isinstance(node, dict):
        raise ConfigError(f"override {text!r}: cannot descend into {key!r}")
    if node.get(key) is None:
        node[key] = {}
    return node[key]


def _list_index(node: list, key: str, text: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"override {text!r}: {key!r} is not an index of a list of {len(node)} items")
    return int(key)


def load_run_config(name_or_path: Union[str, os.PathLike], overrides: Sequence[str] = ()) -> RunConfig:
    """Read a run config (a packaged name or a YAML path) and apply dotted overrides.

    Data paths in the file are relative to the file; data paths given as overrides are relative
    to the current directory.
    """
    path = resolve_config_path(name_or_path)
    raw = read_yaml(path, ConfigError) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {list(SECTIONS)}")
    if isinstance(raw.get("data"), dict):
        raw["data"] = _data_section_with_absolute_paths(raw, str(path), path.resolve().parent)
    return run_config_with_overrides(raw, overrides, source=str(path))


def run_config_with_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str) -> RunConfig:
    """RunConfig from a plain dict (e.g. a checkpoint's) after dotted overrides."""
    label = source if not overrides else f"{source} with overrides {list(overrides)}"
    return RunConfig.from_dict(apply_overrides(raw, overrides), source=label, base_dir=Path.cwd())


def _data_section_with_absolute_paths(raw: dict[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """The file's data section with relative paths resolved against ``base_dir`` by DataConfig's own
    rule. Keys the file leaves out stay out: ``window`` keeps following model.window, and required
    paths (a template such as paper_soft.yaml) can still come from overrides."""
    section = dict(raw["data"])
    probe = dict(section)
    probe.setdefault("window", model_config_from_section(raw.get("model") or {}, source).window)
    for key in _required_keys(DataConfig):
        if probe.get(key) is None:
            probe[key] = "unset"
    resolved = data_config_from_section(probe, source, base_dir).to_dict()
    return {key: None if section[key] is None else resolved[key] for key in section}


def _required_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


__all__ = ["ConfigError", "TrainConfig", "RunConfig", "SECTIONS", "packaged_configs", "resolve_config_path",
           "parse_override", "apply_overrides", "load_run_config", "run_config_with_overrides"]
