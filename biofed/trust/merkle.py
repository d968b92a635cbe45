"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs.

leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right).
`CompactRange` holds only the O(log n) roots of the perfect subtrees of a
tree, so an aggregator can mirror any node's log root in constant memory.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofFailed(ValueError):
    """An inclusion or consistency proof does not verify."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1, over leaf hashes."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    proof: list[bytes] = []
    lo, hi = 0, n
    # Walk down from the root, collecting sibling subtree roots (bottom-up order at the end).
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            proof.append(root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root(leaves[lo : lo + k]))
            lo = lo + k
    return proof[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> None:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise ProofFailed(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofFailed("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofFailed("inclusion proof is too short")
    if r != expected_root:
        raise ProofFailed("inclusion proof does not lead to the expected root")


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    n = len(leaves)
    if not 0 < first <= n:
        raise ValueError(f"consistency proof needs 0 < first ({first}) <= size ({n})")
    return _subproof(first, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second:
        raise ProofFailed(f"cannot prove consistency from size {first} to size {second}")
    if first == second:
        if proof:
            raise ProofFailed("consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofFailed("different roots for the same tree size: the log was rewritten")
        return
    proof = list(proof)
    if first & (first - 1) == 0:  # first is a power of two
        proof = [first_root] + proof
    if not proof:
        raise ProofFailed("consistency proof is empty")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofFailed("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofFailed("consistency proof is too short")
    if fr != first_root:
        raise ProofFailed("the earlier tree is not a prefix of the later one: the log was rewritten")
    if sr != second_root:
        raise ProofFailed("consistency proof does not lead to the later root")


class CompactRange:
    """The perfect-subtree roots covering leaves [0, size): enough to append and to compute the root."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if bin(size).count("1") != len(hashes):
            raise ValueError(f"a compact range of size {size} has {bin(size).count('1')} hashes, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)  # largest subtree first

    def append(self, leaf: bytes) -> None:
        self.hashes.append(leaf)
        self.size += 1
        # Merge equal-sized subtrees: one merge per trailing 1-bit of the old size.
        size = self.size
        while size & 1 == 0:
            right = self.hashes.pop()
            left = self.hashes.pop()
            self.hashes.append(node_hash(left, right))
            size >>= 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        result = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            result = node_hash(h, result)
        return result

    def copy(self) -> "CompactRange":
        return CompactRange(self.size, self.hashes)

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> "CompactRange":
        return cls(size, [data[i : i + 32] for i in range(0, len(data), 32)])
