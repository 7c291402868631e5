"""The authors' released checkpoints: safe reading (no pickled code runs) and import as zoo members."""
from .checkpoint import CheckpointError, Placeholder, read_checkpoint
from .importer import import_airs, infer_config

__all__ = ["CheckpointError", "Placeholder", "read_checkpoint", "import_airs", "infer_config"]
