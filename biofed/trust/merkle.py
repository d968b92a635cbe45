"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs.

leaf hash = SHA-256(0x00 || entry), node hash = SHA-256(0x01 || left || right).
`CompactRange` holds only the O(log n) roots of the perfect subtrees of a
tree, so an aggregator can mirror any node's log root in constant memory.
`MerkleTree` holds every perfect subtree hash, so a node answers any proof
with O(log^2 n) lookups and hashes.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

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
    return MerkleTree(leaves).inclusion_proof(index, len(leaves))


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
    return MerkleTree(leaves).consistency_proof(first, len(leaves))


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


class MerkleTree:
    """Every perfect subtree hash of an append-only log, packed by level: any proof in O(log^2 n) hashes.

    Level 0 holds the leaf hashes, level L the roots of the complete aligned
    subtrees [i * 2**L, (i + 1) * 2**L). Each is computed once, when its last
    leaf is appended, and never changes (the log only grows), so a node
    answers every proof request from lookups instead of rehashing its whole
    log. Memory: about 64 bytes per leaf, in one bytearray per level.
    """

    def __init__(self, leaves: Iterable[bytes] = ()):
        self.levels: list[bytearray] = [bytearray()]
        self.extend(leaves)

    @property
    def size(self) -> int:
        return len(self.levels[0]) // 32

    def extend(self, leaves: Iterable[bytes]) -> None:
        levels = self.levels
        for leaf in leaves:
            if len(leaf) != 32:
                raise ValueError(f"a leaf hash has 32 bytes, not {len(leaf)}")
            levels[0] += leaf
            level, count = 0, len(levels[0]) // 32
            while count % 2 == 0:  # this leaf completes a subtree one level up
                row = levels[level]
                if level + 1 == len(levels):
                    levels.append(bytearray())
                levels[level + 1] += node_hash(bytes(row[-64:-32]), bytes(row[-32:]))
                level += 1
                count = len(levels[level]) // 32

    def range_root(self, lo: int, hi: int) -> bytes:
        """MTH of the leaves [lo, hi); lo must be a multiple of a power of two >= hi - lo.

        Every range the RFC 9162 proofs ask for is of that form: it is then
        covered by perfect subtrees of decreasing size, each one stored.
        """
        if not 0 <= lo < hi <= self.size:
            raise ValueError(f"leaves [{lo}, {hi}) are outside a tree of {self.size}")
        pieces = []
        while lo < hi:
            level = (hi - lo).bit_length() - 1
            if lo % (1 << level):
                raise ValueError(f"leaves [{lo}, {hi}) do not start at a subtree boundary")
            start = (lo >> level) * 32
            pieces.append(bytes(self.levels[level][start : start + 32]))
            lo += 1 << level
        result = pieces.pop()
        while pieces:
            result = node_hash(pieces.pop(), result)
        return result

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return self.range_root(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, for any size up to the tree's."""
        if not 0 <= index < size <= self.size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        proof: list[bytes] = []
        lo, hi = 0, size
        # Walk down from the root, collecting sibling subtree roots (bottom-up order at the end).
        while hi - lo > 1:
            k = _split(hi - lo)
            if index - lo < k:
                proof.append(self.range_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_root(lo, lo + k))
                lo = lo + k
        return proof[::-1]

    def consistency_proof(self, first: int, size: int) -> list[bytes]:
        """PROOF(first, D[size]) of RFC 9162 section 2.1.4.1, for any size up to the tree's."""
        if not 0 < first <= size <= self.size:
            raise ValueError(f"consistency proof needs 0 < first ({first}) <= size ({size}) <= {self.size}")
        # SUBPROOF(m, D[lo:hi], complete), unrolled: the nodes are collected top-down and returned bottom-up.
        proof: list[bytes] = []
        m, lo, hi, complete = first, 0, size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self.range_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.range_root(lo, lo + k))
                m, lo, complete = m - k, lo + k, False
        if not complete:
            proof.append(self.range_root(lo, hi))
        return proof[::-1]
