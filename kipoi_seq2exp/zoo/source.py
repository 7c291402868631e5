"""The ``model_zoo/`` Kipoi model source: registering it, its members, and their weight folders.

Kipoi finds models through *sources* listed in ``~/.kipoi/config.yaml``; without one it tries to
git-clone the official zoo and, offline, reports a misleading "model doesn't exist".
:func:`register_source` adds ours as a local source (idempotent). Each member of the group
``Seq2Exp`` (a row of ``models.tsv``) keeps its exported model in ``model_zoo/Seq2Exp/<member>/``:
``model.safetensors``, ``config.yaml`` (ModelConfig), ``data.yaml`` and ``metrics.json``, as written
by ``seq2exp export`` (:mod:`kipoi_seq2exp.train.export`). Paper-size weights are not in the
repository: a member without them fails with :class:`ZooError` saying how to produce or install them.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..atomic import publish, staging_folder, write_text_atomic
from ..checksum import file_digest
from ..train.member_files import CONFIG_FILE, DATA_FILE, METRICS_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    from ..model import ModelConfig, Seq2Exp

GROUP = "Seq2Exp"
DEFAULT_SOURCE_NAME = "seq2exp"
#: ``model_zoo/`` of a source checkout (``pip install -e .``); a wheel does not ship it.
DEFAULT_SOURCE_DIR = Path(__file__).resolve().parents[2] / "model_zoo"
#: Scores of ``metrics.json`` (per split) quoted in the ``metrics`` column of models.tsv (model info).
REPORTED_SPLITS = ("test", "val")
REPORTED_SCORES = ("mse", "mae", "pearson", "mask_ratio")
#: The models.tsv columns an export fixes: written from its files (`export_columns`), never by hand.
EXPORT_COLUMNS = ("variant", "cell_type", "window", "signals", "hic_normalization", "metrics")
#: The group's dataloader without a member (``kipoi ... --source dir``), generated from its template.
DATALOADER_YAML = DEFAULT_SOURCE_DIR.parent / "dataloaders" / GROUP / "dataloader.yaml"


class ZooError(ValueError):
    """Bad input a user can fix (missing weights, unknown member, misspelt argument); the message
    names the file or name and the fix, on one line."""


# ------------------------------------------------------------------ kipoi configuration
def kipoi_config_path() -> Path:
    """Where kipoi reads its sources: ``~/.kipoi/config.yaml`` (``/tmp/.kipoi`` if HOME is read-only)."""
    home = os.path.expanduser("~")
    base = home if os.access(home, os.W_OK) else "/tmp"
    return Path(base) / ".kipoi" / "config.yaml"


def _kipoi_default_sources() -> dict:
    """kipoi's own default sources, kept so that ``kipoi ls`` and the official zoo still work."""
    kipoi_dir = kipoi_config_path().parent
    return {
        "kipoi": {"type": "git", "remote_url": "https://github.com/kipoi/models.git",
                  "local_path": str(kipoi_dir / "models") + os.sep, "auto_update": True},
        "github-permalink": {"type": "github-permalink", "local_path": str(kipoi_dir / "github-permalink") + os.sep},
    }


def find_source_dir(path: str | os.PathLike | None = None) -> Path:
    """The model source folder (holding ``Seq2Exp/``), checked; the checkout's ``model_zoo`` by default."""
    source = Path(path).expanduser().resolve() if path is not None else DEFAULT_SOURCE_DIR
    if not (source / GROUP / "models.tsv").is_file():
        raise ZooError(
            f"{source}: not a Seq2Exp model source (no {GROUP}/models.tsv). Fix: pass the `model_zoo` folder of a "
            "kipoi-seq2exp source checkout (`git clone ... && pip install -e .`), "
            "e.g. --path /path/to/kipoi-seq2exp/model_zoo."
        )
    return source


def register_source(name: str = DEFAULT_SOURCE_NAME, path: str | os.PathLike | None = None) -> bool:
    """Add (or update) the local kipoi source ``name`` -> ``path`` in the kipoi config.

    Idempotent: returns ``False`` when the config already says exactly that. The file is rewritten
    atomically; kipoi's default sources are kept (and created, if the config did not exist yet).
    In a process that already imported kipoi, the source is also added to the live configuration.
    """
    if name == "dir":
        raise ZooError("source name 'dir' is reserved by kipoi (it means a folder path). Fix: choose another --name.")
    source = find_source_dir(path)
    config_path = kipoi_config_path()
    config = _read_kipoi_config(config_path)
    sources = config.setdefault("model_sources", _kipoi_default_sources())
    wanted = {"type": "local", "local_path": str(source)}
    changed = sources.get(name) != wanted
    if changed:
        sources[name] = wanted
        write_text_atomic(config_path, yaml.safe_dump(config, sort_keys=False, default_flow_style=False))
    if "kipoi.config" in sys.modules:
        import kipoi
        from kipoi.sources import LocalSource

        from .compat import unknown_member_lists_members

        unknown_member_lists_members()
        kipoi.config.add_source(name, LocalSource(str(source), name=name))
    return changed


def _read_kipoi_config(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ZooError(f"{path}: not valid YAML ({err}). Fix: repair or delete the file (kipoi recreates it).") from err
    if not isinstance(config, dict) or not isinstance(config.get("model_sources", {}), dict):
        raise ZooError(f"{path}: expected a mapping with a `model_sources` mapping. Fix: repair or delete the file.")
    return config


# ------------------------------------------------------------------ members
def read_members(group_dir: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of ``models.tsv`` (one per member), as strings."""
    with open(Path(group_dir) / "models.tsv", newline="") as handle:
        rows = [row for row in csv.DictReader(_without_comments(handle), delimiter="\t")]
    return rows


def _without_comments(lines):
    return (line for line in lines if not line.startswith("#"))


def member_names(group_dir: str | os.PathLike) -> list[str]:
    """``Seq2Exp/<member>`` for every row of the group's models.tsv, in file order."""
    return [f"{GROUP}/{row['model']}" for row in read_members(group_dir)]


def unknown_member_message(name: str, source: str, members: list[str]) -> str:
    """One line for a member name that the source does not list (kipoi's own is a traceback)."""
    return (f"unknown model {name!r} in kipoi source {source!r}; available: {members}. "
            f"Fix: use one of these names (`kipoi ls {GROUP} --source {source}` lists them with their doc).")


def member_row(name: str, source_dir: str | os.PathLike | None = None) -> tuple[Path, dict[str, str]]:
    """Folder and models.tsv row of member ``Seq2Exp/<member>`` (or ``<member>``); ZooError if unknown."""
    group_dir = find_source_dir(source_dir) / GROUP
    member = name.split("/", 1)[1] if name.startswith(GROUP + "/") else name
    rows = {row["model"]: row for row in read_members(group_dir)}
    if member not in rows:
        raise ZooError(f"unknown model {name!r}; the {GROUP} group has {member_names(group_dir)}. "
                       "Fix: use one of these names.")
    return group_dir / member, rows[member]


def example_dataloader_args(name: str, source_dir: str | os.PathLike | None = None) -> dict:
    """The member's example dataloader arguments (dataloader-template.yaml), example files as
    absolute paths: ``kipoi get-example`` prints them relative to the group folder instead."""
    from kipoi.sources import LocalSource

    member_dir, row = member_row(name, source_dir)
    group_dir = member_dir.parent
    descr = LocalSource(str(group_dir.parent)).get_dataloader_descr(f"{GROUP}/{row['model']}")
    examples = descr.download_example(output_dir=str(group_dir), dry_run=True)
    return {key: str((group_dir / value).resolve()) if isinstance(value, str) and (group_dir / value).exists()
            else value for key, value in examples.items()}


#: Index files read together with an example file; copied along with it.
_EXAMPLE_SIDECARS = (".fai", ".gzi", ".tbi", ".csi")


def copy_examples(name: str, out_dir: str | os.PathLike, source_dir: str | os.PathLike | None = None) -> dict:
    """Copy the member's example files (and their indexes) into ``out_dir``; returns its example
    dataloader arguments pointing at the copies. What ``kipoi get-example -o`` does for remote
    examples only: for a local source it writes nothing (see `example_dataloader_args`)."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    copied = {}
    for key, value in example_dataloader_args(name, source_dir).items():
        if not (isinstance(value, str) and Path(value).is_file()):
            copied[key] = value
            continue
        if str(out / Path(value).name) in copied.values():
            raise ZooError(f"{name}: two example files are named {Path(value).name!r}; they cannot share {out}. "
                           "Fix: rename one in the member's dataloader-template.yaml.")
        for sidecar in [Path(value)] + [Path(value + ext) for ext in _EXAMPLE_SIDECARS]:
            if sidecar.is_file():
                shutil.copy2(sidecar, out / sidecar.name)
        copied[key] = str(out / Path(value).name)
    return copied


def readme_section(train_config: str) -> str:
    """The README section holding the data and commands of a member's run config."""
    return "Real data: chr22, K562 and GM12878" if train_config.startswith("real_chr22") else "Paper recipe"


def missing_weights_message(member_dir: Path, train_config: str, cell_type: str) -> str:
    """How to give member ``member_dir`` its weights: train + export, or install an exported model."""
    name = f"{member_dir.parent.name}/{member_dir.name}"
    return (
        f"{name} has no trained weights ({member_dir / WEIGHTS_FILE} is missing). Fix: train and export into that "
        f"folder - `seq2exp train --config {train_config} --set data.fasta=... (README: '{readme_section(train_config)}')` "
        f"then `seq2exp export <run folder>/best.ckpt --cell-type {cell_type} --out {member_dir}` - or install an "
        f"exported model you trust: `seq2exp install-weights {name} <folder, .tar.gz/.zip or URL> --md5 <its md5>`."
    )


def check_member_dir(member_dir: str | os.PathLike, train_config: str, cell_type: str) -> Path:
    """Absolute member folder, raising ZooError with the fix when its exported weights are absent."""
    member_dir = Path(member_dir).resolve()
    if not (member_dir / WEIGHTS_FILE).is_file() or not (member_dir / CONFIG_FILE).is_file():
        raise ZooError(missing_weights_message(member_dir, train_config, cell_type))
    return member_dir


def load_member_model(member_dir: str | os.PathLike) -> Seq2Exp:
    """The exported `Seq2Exp` of a member folder (eval, CPU); ZooError if the files do not load.

    Here, below `member` and the Kipoi wrapper, because `install_weights` loads a download with it
    before anything is replaced; torch is imported on first call, not by ``seq2exp register``.
    """
    from ..train.export import load_exported

    try:
        return load_exported(member_dir)
    except (OSError, ValueError, RuntimeError) as err:
        raise ZooError(f"{member_dir}: cannot load the exported model ({type(err).__name__}: {err}). "
                       "Fix: export it again with `seq2exp export`.") from err


def check_config_matches(cfg: ModelConfig, variant: str, window: int, signals: str, where) -> None:
    """Raise ZooError when a model to be installed is not the one the member's row declares (for a
    member without an export, e.g. the paper members, its row is the only description it has)."""
    exported = (cfg.variant, cfg.window, [s.name for s in cfg.signals])
    declared = (variant, int(window), [s.strip() for s in str(signals).split(",")])
    if exported != declared:
        raise ZooError(
            f"{where}: the exported model is variant {exported[0]}, window {exported[1]}, signals {exported[2]}, but "
            f"this member declares variant {declared[0]}, window {declared[1]}, signals {declared[2]} (models.tsv). "
            "Fix: export a run of the member's train config into this folder."
        )


def read_metrics(member_dir: str | os.PathLike) -> dict:
    """``metrics.json`` of an exported member ({} when absent)."""
    path = Path(member_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    with open(path) as handle:
        return json.load(handle)


def format_metrics(metrics: dict) -> str:
    """One line for the model info from an export's metrics.json, e.g.
    'test: mse 0.1856, mae 0.3054, pearson 0.8723, mask_ratio 0.0688 (step 50000)'."""
    parts = []
    for split in REPORTED_SPLITS:
        scores = metrics.get(split) or {}
        values = [f"{name} {float(scores[name]):.4g}" for name in REPORTED_SCORES
                  if isinstance(scores.get(name), (int, float)) and math.isfinite(scores[name])]
        if values:
            step = scores.get("global_step", metrics.get("global_step"))
            parts.append(f"{split}: {', '.join(values)}" + (f" (step {step})" if step is not None else ""))
    text = "; ".join(parts) if parts else "no validation or test scores recorded"
    note = metrics.get("note")
    return f"{text} - {note}" if note else text


def export_columns(member_dir: str | os.PathLike) -> dict[str, str]:
    """The models.tsv cells that a member's export fixes (`EXPORT_COLUMNS`), read from its files; {}
    for a member without an export (the paper members until their weights come: their row is all
    they have).

    variant, window, signals from ``config.yaml``; hic_normalization from ``data.yaml`` (VC when it
    has none, as the dataloader); cell_type and the metrics line from ``metrics.json``.
    """
    from ..data.config import HicOptions
    from ..model.config import ModelConfig

    member_dir = Path(member_dir)
    if not (member_dir / CONFIG_FILE).is_file():
        return {}
    cfg = ModelConfig.from_yaml(member_dir / CONFIG_FILE)
    data_file = member_dir / DATA_FILE
    data = (yaml.safe_load(data_file.read_text()) if data_file.is_file() else None) or {}
    metrics = read_metrics(member_dir)
    return {"variant": cfg.variant, "cell_type": str(metrics.get("cell_type") or "unknown"), "window": str(cfg.window),
            "signals": ",".join(s.name for s in cfg.signals),
            "hic_normalization": (data.get("hic") or {}).get("normalization", HicOptions().normalization),
            "metrics": format_metrics(metrics)}


def sync_metrics(source_dir: str | os.PathLike | None = None) -> list[str]:
    """Rewrite the `EXPORT_COLUMNS` of each exported member's models.tsv row from its export (its
    metrics.json scores into the model info among them); members without an export keep their row.

    Returns the members whose row changed; models.tsv is rewritten atomically.
    """
    group_dir = find_source_dir(source_dir) / GROUP
    table = ModelsTable.read(group_dir)
    changed = [row["model"] for row in table.rows() if table.set_row({**row, **export_columns(group_dir / row["model"])})]
    if changed:
        table.write()
    return changed


@dataclasses.dataclass
class MemberRow:
    """What a writer of a models.tsv row knows that the member's export does not (the other columns,
    `EXPORT_COLUMNS`, come from the export): each field is a column, i.e. a variable of the two templates.

    Every writer of rows (``seq2exp export`` into a group, ``seq2exp import-airs``,
    ``benchmarks/real_chr22.py``) builds one, so a new column is a new required field here.
    """

    model: str
    train_config: str
    trained_on: str
    note: str
    label: str
    procedure: str
    examples: str = "sim"  # example files: "sim" (simulated genome) or "chr22" (real slice, accessibility)
    rc_average: bool = False


@dataclasses.dataclass
class ModelsTable:
    """models.tsv as its lines (comments, header, one row per member), edited row by row and written atomically."""

    path: Path
    lines: list[str]
    header_at: int

    @classmethod
    def read(cls, group_dir: str | os.PathLike) -> "ModelsTable":
        path = Path(group_dir) / "models.tsv"
        lines = path.read_text().splitlines(keepends=True)
        return cls(path, lines, next(i for i, line in enumerate(lines) if not line.startswith("#")))

    @property
    def columns(self) -> list[str]:
        return self.lines[self.header_at].rstrip("\n").split("\t")

    def rows(self) -> list[dict[str, str]]:
        """Each member's cells as the file has them (no CSV quoting: a rewrite gives back the same text)."""
        return [dict(zip(self.columns, line.rstrip("\n").split("\t"))) for line in self.lines[self.header_at + 1:]
                if line.strip()]

    def set_row(self, values: dict[str, str]) -> bool:
        """Replace the row of member ``values["model"]`` (or append one); tabs and newlines in values become
        spaces. Returns whether the text changed."""
        missing = [c for c in self.columns if c not in values]
        if missing:
            raise ZooError(f"{self.path}: no value for the columns {missing} of member {values.get('model')!r}. Fix: "
                           "export the member into its folder first (they come from its export), or add them to MemberRow.")
        cells = "\t".join(" ".join(str(values[c]).split()) for c in self.columns) + "\n"
        at = next((i for i in range(self.header_at + 1, len(self.lines))
                   if self.lines[i].split("\t", 1)[0] == values["model"]), None)
        if at is None:
            self.lines.append(cells if self.lines[-1].endswith("\n") else "\n" + cells)
            return True
        changed, self.lines[at] = self.lines[at] != cells, cells
        return changed

    def write(self) -> None:
        write_text_atomic(self.path, "".join(self.lines))


def upsert_member(group_dir: str | os.PathLike, member: MemberRow) -> None:
    """Add the exported member ``member.model`` of the group to its models.tsv, or replace its row: the
    `MemberRow` fields and the columns its export fixes. Kipoi only sees members listed there."""
    table = ModelsTable.read(group_dir)
    table.set_row({**dataclasses.asdict(member), **export_columns(Path(group_dir) / member.model)})
    table.write()


def list_export_in_group(member_dir: str | os.PathLike, train_config: str) -> bool:
    """Give an export written into a model group folder (``seq2exp export --out model_zoo/Seq2Exp/NAME``)
    its models.tsv row, so that Kipoi sees ``Seq2Exp/NAME``; a member already listed keeps the rest of
    its row and gets the new export's columns. ``train_config`` names the run config in the row (a
    packaged name or a YAML path).

    Returns True when a row was added.
    """
    member_dir = Path(member_dir)
    group_dir = member_dir.parent
    if not (group_dir / "models.tsv").is_file():
        return False
    if member_dir.name in {r["model"] for r in read_members(group_dir)}:
        sync_metrics(group_dir.parent)
        return False
    data = yaml.safe_load((member_dir / DATA_FILE).read_text()) or {}
    metrics = read_metrics(member_dir)
    cell = metrics.get("cell_type") or "unknown"
    column = data.get("expression_column", "expression")
    label = f"log10({column} + 1)" if data.get("target_transform", "log10p1") == "log10p1" else column
    joint = [c.get("name") for c in data.get("joint_cells") or []]
    upsert_member(group_dir, MemberRow(
        model=member_dir.name, train_config=train_config,
        trained_on=f"{cell}: gene table {data.get('gene_table')}, targets {data.get('expression')}"
                   + (f", jointly with {', '.join(joint)}" if joint else "")
                   + " (paths relative to the member folder; all files in its data.yaml)",
        note=f"Exported with `seq2exp export` from {metrics.get('checkpoint', 'a checkpoint')}.",
        label=label, procedure="Trained with `seq2exp train`, exported with `seq2exp export`.",
    ))
    return True


def dataloader_yaml(group_dir: str | os.PathLike) -> str:
    """`DATALOADER_YAML`'s text: the group's ``dataloader-template.yaml`` rendered for no member, its
    member parts (each argument's ``default`` and ``example``) left out, so the dataloader is
    described in one file (`write_dataloader_yaml` writes the copy)."""
    import jinja2

    group_dir = Path(group_dir)
    template = jinja2.Template((group_dir / "dataloader-template.yaml").read_text())
    described = yaml.safe_load(template.render(dict.fromkeys(ModelsTable.read(group_dir).columns, "")))
    for argument in described["args"].values():
        argument.pop("default", None)
        argument.pop("example", None)
    header = (f"# Generated from model_zoo/{GROUP}/dataloader-template.yaml, its member defaults and example files\n"
              "# left out, by kipoi_seq2exp.zoo.source.write_dataloader_yaml: edit the template, not this file.\n")
    return header + yaml.safe_dump(described, sort_keys=False, width=10_000, allow_unicode=True)


def write_dataloader_yaml(source_dir: str | os.PathLike | None = None, out: str | os.PathLike = DATALOADER_YAML) -> bool:
    """Write `dataloader_yaml` of the source's group to ``out``; returns whether its text changed."""
    text = dataloader_yaml(find_source_dir(source_dir) / GROUP)
    out = Path(out)
    if out.is_file() and out.read_text() == text:
        return False
    write_text_atomic(out, text)
    return True


# ------------------------------------------------------------------ installing exported weights
def install_weights(name: str, origin: str, md5: str | None = None,
                    source_dir: str | os.PathLike | None = None) -> Path:
    """Put an exported model (folder, ``.tar.gz``/``.zip`` of one, or a URL to an archive) into member ``name``.

    The archive's md5 is checked when given (required for http(s) URLs); the model is loaded and
    its config compared with the member's row before it replaces the folder's contents, so a wrong or
    corrupt download never leaves a half-installed member; then the row's export columns follow it. The download is staged in a hidden
    folder beside the member (`staging_folder`); one left by a killed install is removed.
    """
    member_dir, row = member_row(name, source_dir)
    scheme = urllib.parse.urlparse(origin).scheme
    if scheme in ("http", "https", "ftp") and not md5:
        raise ZooError(f"{origin}: a download needs --md5 (the archive's checksum from whoever published it).")
    if md5 and Path(_local_path(origin)).is_dir():
        raise ZooError(f"{origin}: --md5 checks an archive; a folder has none. "
                       "Fix: leave out --md5 or give the archive.")
    with staging_folder(member_dir, "install") as work:
        staged = _stage_export(origin, scheme, md5, work)
        model = load_member_model(staged)
        check_config_matches(model.cfg, row["variant"], int(row["window"]), row["signals"], origin)
        publish(staged, member_dir)
    sync_metrics(member_dir.parent.parent)
    return member_dir


def _stage_export(origin: str, scheme: str, md5: str | None, work: Path) -> Path:
    """Copy / download + unpack ``origin`` under ``work``; returns the folder holding the weights file."""
    if scheme in ("", "file") and Path(_local_path(origin)).is_dir():
        return Path(shutil.copytree(_local_path(origin), work / "export"))
    archive = work / "download"
    if scheme in ("", "file"):
        if not Path(_local_path(origin)).is_file():
            raise ZooError(f"{origin}: no such file or folder. Fix: check the path.")
        shutil.copyfile(_local_path(origin), archive)
    else:
        try:
            urllib.request.urlretrieve(origin, archive)
        except OSError as err:
            raise ZooError(f"{origin}: download failed ({err}). Fix: check the URL and the connection.") from err
    actual = file_digest(archive, "md5") if md5 else None
    if md5 and actual != md5.lower():
        raise ZooError(f"{origin}: md5 {actual} differs from the expected {md5}. "
                       "Fix: download it again or check the checksum.")
    unpacked = work / "export"
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked)
    else:
        raise ZooError(f"{origin}: neither a folder nor a .tar.gz/.zip archive of an exported model.")
    found = sorted(p.parent for p in unpacked.rglob(WEIGHTS_FILE))
    if len(found) != 1:
        raise ZooError(f"{origin}: expected exactly one {WEIGHTS_FILE} inside, found {len(found)}.")
    return found[0]


def _local_path(origin: str) -> str:
    return urllib.parse.urlparse(origin).path if origin.startswith("file:") else origin

