"""Runtime shims that let kipoi 0.8.6 and kipoi-veff 0.3.1 (last releases: 2022) run on NumPy 2,
pyvcf3 and a current Python, applied once by :func:`apply` when the wrapper module is imported
(Kipoi imports it while loading any Seq2Exp member, before it writes or scores anything).

Each shim is small, idempotent, and fixes one measured failure (``tests/test_zoo_compat.py`` and
``tests/test_zoo_cli.py`` show each failure without its shim):

- :func:`restore_numpy_aliases`: ``np.string_``, ``np.unicode_`` (kipoi's HDF5 writer), ``np.int``,
  ``np.str``, ``np.in1d`` (kipoi-veff's mutators, reshapers and output filter) were removed by NumPy 2.
- :func:`default_pyvcf_info_type_code`: pyvcf3 1.0.4 added a 7th field ``type_code`` to its
  ``Info`` header record; kipoi-veff's VCF writer builds it with 6.
- :func:`hdf5_chunk_size_only_for_hdf5`: kipoi passes the model's ``writers.hdf5_chunk_size`` to
  every writer; the TSV writer then fails on the unexpected keyword.
- :func:`strict_dataloader_kwargs`: kipoi drops misspelt ``--dataloader_args`` with a warning, so
  a typo in an optional file argument silently predicts from an all-zero signal channel.
- :func:`indexed_vcf_for_veff`: kipoi-veff bgzips and indexes an unindexed VCF in place with the
  bedtools binaries (usually absent: a NotImplementedError traceback); ours says how to index it.
- :func:`veff_windows_from_chromosome_start`: a window that starts before base 1 (a gene within L/2
  of a chromosome start; its metadata start is negative) makes kipoi-veff query the VCF at
  "chr:-N-M", which finds nothing: variants of those genes were silently left out.
- :func:`gene_ids_in_every_output`: ``kipoi predict`` without ``--keep_metadata`` wrote predictions
  with no gene id (and no window-quality flag): rows that cannot be used.
- :func:`one_line_cli_errors`: the ``kipoi`` / ``kipoi_veff`` command lines print a traceback for a
  bad input file; ours prints the actionable message alone.
- :func:`unknown_member_lists_members`: kipoi reports a misspelt member (``Seq2Exp/K526``) as
  "model ... doesn't exist" at the end of a traceback; ours lists the group's members. Also applied
  by ``register_source`` in a process that already imported kipoi (kipoi looks a member up before
  it imports any of our code, so the ``kipoi`` command line itself keeps its own message).
- :func:`quiet_known_warnings`: third-party warnings every run printed and nobody can act on
  (kipoiseq's dataloaders carry a ``postprocessing`` key kipoi no longer knows: three "Unrecognized
  fields" lines; setuptools' ``pkg_resources`` deprecation). Each is matched by its exact text.

setuptools needs no shim: it is pinned below 81 (kipoi's CLI imports ``pkg_resources`` at start-up,
before any of our code can run).
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

#: ``defined_as`` of every dataloader these shims treat as ours.
SEQ2EXP_DATALOADERS = ("kipoi_seq2exp.data.kipoi_dataloader.Seq2ExpDataset",)

_applied = False


def restore_numpy_aliases() -> None:
    """Put back the NumPy 1 aliases kipoi and kipoi-veff call (only those NumPy no longer has)."""
    aliases: dict[str, Any] = {
        "string_": np.bytes_,
        "unicode_": np.str_,
        "int": int,
        "str": str,
        "in1d": _in1d,
    }
    for name, value in aliases.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def _in1d(ar1, ar2, assume_unique: bool = False, invert: bool = False) -> np.ndarray:
    """NumPy 1's ``in1d``: ``isin`` on the flattened first array."""
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def default_pyvcf_info_type_code() -> None:
    """Let pyvcf3's ``Info`` header record be built without ``type_code`` (derived from its type)."""
    try:
        import vcf.parser
    except ImportError:  # pyvcf3 is only needed by kipoi-veff's VCF writer
        return
    base = vcf.parser._Info
    if getattr(base, "_seq2exp_shim", False):
        return
    encode = vcf.parser._encode_type

    class Info(base):
        __slots__ = ()
        _seq2exp_shim = True

        def __new__(cls, id, num, type, desc, source=None, version=None, type_code=None):  # noqa: A002 - pyvcf's names
            return super().__new__(cls, id, num, type, desc, source, version,
                                   encode(type) if type_code is None else type_code)

    vcf.parser._Info = Info


def _wrap_once(owner: Any, name: str, make_wrapper: Callable[[Callable], Callable]) -> None:
    """Replace ``owner.name`` by ``make_wrapper(original)``, marked so that applying it again is a no-op."""
    original = getattr(owner, name)
    if getattr(original, "_seq2exp_shim", False):
        return
    wrapper = functools.wraps(original)(make_wrapper(original))
    wrapper._seq2exp_shim = True
    setattr(owner, name, wrapper)


def hdf5_chunk_size_only_for_hdf5() -> None:
    """Route ``hdf5_chunk_size`` (needed for long per-base mask outputs) to the HDF5 writer only."""
    import kipoi.writers

    def make(original: Callable) -> Callable:
        def get_writer(output_file, metadata_schema=None, **kwargs):
            if output_file.split(".")[-1] not in ("h5", "hdf5"):
                kwargs.pop("hdf5_chunk_size", None)
            return original(output_file, metadata_schema, **kwargs)
        return get_writer

    _wrap_once(kipoi.writers, "get_writer", make)


def strict_dataloader_kwargs() -> None:
    """Make an unknown ``--dataloader_args`` key an error (naming the valid ones) for our dataloader."""
    import kipoi.pipeline

    def make(original: Callable) -> Callable:
        def validate_kwargs(dataloader, dataloader_kwargs):
            if isinstance(dataloader_kwargs, dict) and getattr(dataloader, "defined_as", None) in SEQ2EXP_DATALOADERS:
                unknown = sorted(set(dataloader_kwargs) - set(dataloader.args))
                if unknown:
                    from .source import ZooError

                    raise ZooError(
                        f"unknown dataloader argument(s) {unknown}; valid arguments are {sorted(dataloader.args)}. "
                        "Fix the spelling in --dataloader_args."
                    )
            return original(dataloader, dataloader_kwargs)
        return validate_kwargs

    _wrap_once(kipoi.pipeline, "validate_kwargs", make)


def indexed_vcf_for_veff() -> None:
    """Check kipoi-veff's input VCF like ``seq2exp score-variants`` does (bgzip + tabix index, never
    rewritten beside the user's file). Only patched when kipoi-veff is already loaded (its CLI loads
    it before the model): importing it here would reconfigure logging for every kipoi run."""
    snv_predict = sys.modules.get("kipoi_veff.snv_predict")
    if snv_predict is None:
        return

    def make(original: Callable) -> Callable:
        def ensure_tabixed_vcf(input_fn, is_sorted=False, force_tabix=True):
            from ..data.variants import check_vcf

            check_vcf(input_fn)
            return input_fn
        return ensure_tabixed_vcf

    _wrap_once(snv_predict, "ensure_tabixed_vcf", make)


def veff_windows_from_chromosome_start() -> None:
    """Query the VCF from base 1 for windows that start before it; variant positions inside the
    window are still computed from the window's own (negative) start. Patched only when kipoi-veff
    is already loaded (see :func:`indexed_vcf_for_veff`)."""
    snv_predict = sys.modules.get("kipoi_veff.snv_predict")
    if snv_predict is None:
        return

    def make(original: Callable) -> Callable:
        def _overlap_vcf_region(vcf_obj, regions, exclude_indels=True):
            clipped = dict(regions, start=np.maximum(np.asarray(regions["start"]), 0))
            return original(vcf_obj, clipped, exclude_indels)
        return _overlap_vcf_region

    _wrap_once(snv_predict, "_overlap_vcf_region", make)


#: Metadata fields every ``kipoi predict`` output of ours keeps, even without ``--keep_metadata``.
ALWAYS_KEPT_METADATA = ("gene_id", "qc")


def gene_ids_in_every_output() -> None:
    """Keep ``metadata/gene_id`` and ``metadata/qc`` in ``kipoi predict`` outputs without ``--keep_metadata``:
    a prediction row that does not say which gene it is, or whether its window was readable, cannot be used."""
    import kipoi.cli.main

    def make(original: Callable) -> Callable:
        def prepare_batch(dl_batch, pred_batch, keep_inputs=False, keep_metadata=False):
            metadata = dl_batch.get("metadata")
            ours = isinstance(metadata, dict) and all(key in metadata for key in ALWAYS_KEPT_METADATA)
            out = original(dl_batch, pred_batch, keep_inputs=keep_inputs, keep_metadata=keep_metadata)
            if ours and not keep_metadata:
                out["metadata"] = {key: metadata[key] for key in ALWAYS_KEPT_METADATA}
            return out
        return prepare_batch

    _wrap_once(kipoi.cli.main, "prepare_batch", make)


def _user_error_types() -> tuple[type, ...]:
    from ..data.errors import DataInputError
    from .source import ZooError

    return (ZooError, DataInputError)


def _running_kipoi_cli() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name in ("kipoi.__main__", "kipoi_veff.__main__"):
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("kipoi", "kipoi_veff")


def one_line_cli_errors() -> None:
    """Under the kipoi command lines, report our user errors as one ``error:`` line (exit status 1)."""
    if not _running_kipoi_cli():
        return
    user_errors = _user_error_types()

    def make(previous: Callable) -> Callable:
        def excepthook(kind, value, traceback):
            if isinstance(value, user_errors):
                print(f"error: {value}", file=sys.stderr)
                return
            previous(kind, value, traceback)
        return excepthook

    _wrap_once(sys, "excepthook", make)


def unknown_member_lists_members() -> None:
    """Make kipoi's "model Seq2Exp/K526 doesn't exist" a ZooError listing the group's members, for
    sources that hold the Seq2Exp group (other sources and names keep kipoi's error)."""
    import kipoi.sources

    def make(original: Callable) -> Callable:
        def assert_is_component(self, component, which="model"):
            try:
                return original(self, component, which)
            except ValueError as err:
                message = _unknown_member(self, component)
                if message is None:
                    raise
                from .source import ZooError

                raise ZooError(message) from err
        return assert_is_component

    _wrap_once(kipoi.sources.LocalSource, "assert_is_component", make)


def _unknown_member(source: Any, component: str) -> str | None:
    """The member-list message for ``component`` in a source holding the Seq2Exp group, else None."""
    from .source import GROUP, member_names, unknown_member_message

    group_dir = os.path.join(source.local_path, GROUP)
    in_group = os.path.normpath(component).startswith(GROUP + os.sep)
    if not in_group or not os.path.isfile(os.path.join(group_dir, "models.tsv")):
        return None
    return unknown_member_message(component, source.name or source.local_path, member_names(group_dir))


#: (logger, exact message start) of third-party log records that are dropped.
QUIET_LOG_RECORDS = (
    ("kipoi_utils.external.related.mixins", "Unrecognized fields for DataLoaderDescription: {'postprocessing'}"),
)
#: (message regex, category) of third-party warnings that are ignored.
QUIET_WARNINGS = (
    (r"pkg_resources is deprecated as an API", UserWarning),
)


class _DropRecords(logging.Filter):
    """Drops the log records whose message starts with ``start``; every other record passes."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def quiet_known_warnings() -> None:
    """Silence exactly the known third-party warnings of `QUIET_LOG_RECORDS` and `QUIET_WARNINGS`."""
    for name, start in QUIET_LOG_RECORDS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRecords) and f.start == start for f in logger.filters):
            logger.addFilter(_DropRecords(start))
    for message, category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


SHIMS: tuple[Callable[[], None], ...] = (
    restore_numpy_aliases,
    default_pyvcf_info_type_code,
    hdf5_chunk_size_only_for_hdf5,
    strict_dataloader_kwargs,
    indexed_vcf_for_veff,
    veff_windows_from_chromosome_start,
    gene_ids_in_every_output,
    one_line_cli_errors,
    unknown_member_lists_members,
    quiet_known_warnings,
)


def apply() -> None:
    """Apply every shim once per process."""
    global _applied
    if _applied:
        return
    for shim in SHIMS:
        shim()
    _applied = True
    log.debug("kipoi compatibility shims applied: %s", [s.__name__ for s in SHIMS])
