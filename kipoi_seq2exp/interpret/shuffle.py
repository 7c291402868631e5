"""Dinucleotide-preserving shuffle: a null DNA for an element that keeps its composition.

Deleting an element's DNA outright (N) also removes its GC and CpG content, which a model may read
on its own; a shuffle that keeps every dinucleotide count asks only whether the *order* (motifs)
matters. Altschul & Erickson (1985) shuffle a sequence by drawing a random Eulerian path through
its dinucleotide multigraph (one edge s[i] -> s[i+1] per position); Kandel et al. (1996) draw it
uniformly: a random arborescence of "last exits" towards the final letter (Wilson's loop-erased
random walks), every other exit of a letter in random order, and the walk from the first letter.
"""
from __future__ import annotations

import numpy as np


def dinucleotide_shuffle(seq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence with exactly the dinucleotide counts, first and last letter of ``seq``.

    Parameters
    ----------
    seq : (L,) letters or (L, 4) one-hot rows; a letter is any distinct value (row), so N (an
        all-zero row in Seq2Exp's encoding) is shuffled as a letter of its own
    rng : the only source of randomness: the same generator state gives the same shuffle

    Returns
    -------
    array of ``seq``'s shape and dtype. Some sequences have one arrangement only ('AAAA', 'ACGT'),
    then it is ``seq`` itself.
    """
    letters, codes = np.unique(seq, axis=0, return_inverse=True)
    codes = codes.reshape(-1)
    if len(codes) < 3:
        return np.array(seq, copy=True)
    exits = [codes[1:][codes[:-1] == letter] for letter in range(len(letters))]  # successors of each letter
    last_exit = _last_exits(exits, int(codes[-1]), rng)
    order = []
    for letter, successors in enumerate(exits):
        if letter in last_exit:
            rest = np.delete(successors, last_exit[letter])
            order.append(list(rng.permutation(rest)) + [successors[last_exit[letter]]])
        else:
            order.append(list(rng.permutation(successors)))
    walk, used = [int(codes[0])], [0] * len(letters)
    for _ in range(len(codes) - 1):
        here = walk[-1]
        walk.append(int(order[here][used[here]]))
        used[here] += 1
    return letters[np.asarray(walk)]


def _last_exits(exits: list[np.ndarray], final: int, rng: np.random.Generator) -> dict[int, int]:
    """For each letter but ``final`` that has exits, the index of its last exit, such that the last
    exits form a uniformly random tree directed to ``final`` (Wilson's algorithm): the walk then
    uses every edge before it gets stuck at ``final``."""
    in_tree = {final}
    last_exit: dict[int, int] = {}
    for start in range(len(exits)):
        if len(exits[start]) == 0:  # a letter seen only at the end is ``final`` itself
            continue
        letter = start
        while letter not in in_tree:  # random walk; a revisited letter's exit is overwritten (loop erasure)
            last_exit[letter] = int(rng.integers(len(exits[letter])))
            letter = int(exits[letter][last_exit[letter]])
        letter = start
        while letter not in in_tree:
            in_tree.add(letter)
            letter = int(exits[letter][last_exit[letter]])
    return last_exit


__all__ = ["dinucleotide_shuffle"]
