"""The authors' released checkpoints: safe reading (no pickled code runs) and import as zoo members."""
from ..train.export import CheckpointError
from .checkpoint import Placeholder, read_foreign_checkpoint
from .importer import import_airs, infer_config

__all__ = ["CheckpointError", "Placeholder", "read_foreign_checkpoint", "import_airs", "infer_config"]
