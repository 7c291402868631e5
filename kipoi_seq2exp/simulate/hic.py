"""A 5 kb Hi-C contact map: distance decay, insulated domains, Poisson counts, written as .cool."""
from __future__ import annotations

from pathlib import Path

import h5py
import hictkpy
import numpy as np
import pandas as pd

from ..atomic import atomic_path, staging_folder
from .model import Tad
from .params import SimParams


def draw_contacts(params: SimParams, chrom_sizes: dict[str, int], tads: list[Tad],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-triangle intra-chromosomal pixels (bin1_id, bin2_id, count), count > 0, sorted.

    Expected count = diagonal_count * (|i - j| + 1)^-exponent, times ``insulation`` when the two
    bins lie in different domains; the observed count is a Poisson draw from it.
    """
    hic = params.hic
    bin_size = params.layout.bin_size
    bin_tad = np.concatenate([np.full((tad.end - tad.start) // bin_size, tad.index) for tad in tads])
    offset = 0
    rows, cols, counts = [], [], []
    for size in chrom_sizes.values():
        n = size // bin_size
        i, j = np.triu_indices(n)
        keep = (j - i) <= hic.max_distance_bins
        i, j = i[keep] + offset, j[keep] + offset
        expected = hic.diagonal_count * (j - i + 1.0) ** -hic.distance_exponent
        expected = np.where(bin_tad[i] == bin_tad[j], expected, expected * hic.insulation)
        observed = rng.poisson(expected)
        nonzero = observed > 0
        rows.append(i[nonzero])
        cols.append(j[nonzero])
        counts.append(observed[nonzero])
        offset += n
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(counts).astype(np.int32)


def write_cool(path: Path, chrom_sizes: dict[str, int], bin_size: int,
               pixels: tuple[np.ndarray, np.ndarray, np.ndarray], creation_date: str) -> None:
    """Write with hictkpy, then canonicalise so that the same pixels give the same bytes.

    The file also carries ``VC`` balancing weights (``bins/VC``, divisive), so that readers asking
    for the paper's VC normalisation find it; ``NONE`` gives the raw counts.
    """
    with staging_folder(path, "cool") as workdir, atomic_path(path) as canonical:
        raw = workdir / "raw.cool"
        writer = hictkpy.cooler.FileWriter(str(raw), chrom_sizes, bin_size, assembly="seq2exp-sim",
                                           tmpdir=str(workdir))
        bin1, bin2, count = pixels
        writer.add_pixels(pd.DataFrame({"bin1_id": bin1, "bin2_id": bin2, "count": count}), sorted=True)
        writer.finalize()
        _canonicalise_hdf5(raw, canonical, creation_date)
        with h5py.File(canonical, "r+") as handle:
            weights = handle["bins"].create_dataset("VC", data=vc_weights(pixels, len(handle["bins/start"])),
                                                    track_times=False)
            weights.attrs["divisive_weights"] = True


def vc_weights(pixels: tuple[np.ndarray, np.ndarray, np.ndarray], n_bins: int) -> np.ndarray:
    """Vanilla-coverage weights: each bin's total contacts over the mean (NaN for empty bins).

    Dividing a pixel by the weights of its two bins gives the VC-normalised count (as Juicer's
    VC, up to one constant).
    """
    bin1, bin2, count = pixels
    off_diagonal = np.where(bin1 != bin2, count, 0)
    coverage = (np.bincount(bin1, weights=count, minlength=n_bins)
                + np.bincount(bin2, weights=off_diagonal, minlength=n_bins))
    covered = coverage > 0
    return np.where(covered, coverage / coverage[covered].mean(), np.nan)


def _canonicalise_hdf5(source: Path, target: Path, creation_date: str) -> None:
    """Copy every group, dataset and attribute with HDF5 object timestamps off.

    hictk stamps the wall-clock time into the root's ``creation-date`` attribute, its own version
    into ``generated-by``, and HDF5 into every object header; the copy keeps datatypes, chunking and
    compression and fixes all three.
    """
    file_plist = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    file_plist.set_obj_track_times(False)
    file_id = h5py.h5f.create(str(target).encode(), h5py.h5f.ACC_TRUNC, fcpl=file_plist)
    with h5py.File(source, "r") as src, h5py.File(file_id) as dst:
        _copy_attributes(src, dst, creation_date)

        def copy(name: str, obj: h5py.Group | h5py.Dataset) -> None:
            if isinstance(obj, h5py.Group):
                group_plist = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
                group_plist.set_obj_track_times(False)
                h5py.h5g.create(dst.id, name.encode(), gcpl=group_plist)
                _copy_attributes(obj, dst[name], creation_date)
                return
            dataset_plist = obj.id.get_create_plist()
            dataset_plist.set_obj_track_times(False)
            dataset = h5py.Dataset(h5py.h5d.create(dst.id, name.encode(), obj.id.get_type(), obj.id.get_space(),
                                                   dcpl=dataset_plist))
            if obj.size:
                dataset[...] = obj[...]
            _copy_attributes(obj, dataset, creation_date)

        src.visititems(copy)


#: ``generated-by`` names the writer without its version: hictkpy 1.3 and 1.4 write the same pixels.
GENERATED_BY = "hictk"


def _copy_attributes(source: h5py.HLObject, target: h5py.HLObject, creation_date: str) -> None:
    fixed = {"creation-date": creation_date, "generated-by": GENERATED_BY}
    for name in source.attrs:
        target.attrs.create(name, fixed.get(name, source.attrs[name]), dtype=source.attrs.get_id(name).dtype)
