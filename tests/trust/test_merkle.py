"""RFC 9162 Merkle tree: known answers from the RFC 6962 reference tests, proofs, compact ranges."""

import pytest

from biofed.trust import merkle

# The leaf inputs and roots of the Certificate Transparency reference tests.
INPUTS = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          b"\x50\x51\x52\x53\x54\x55\x56\x57", bytes(range(0x60, 0x70))]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [merkle.leaf_hash(x) for x in INPUTS]


def test_empty_tree():
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size):
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size - 1]


def test_known_inclusion_proof():
    # RFC 6962 reference: leaf 0 in the tree of 8.
    proof = merkle.inclusion_proof(0, LEAVES)
    assert [p.hex() for p in proof] == [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]


def test_known_consistency_proof():
    proof = merkle.consistency_proof(6, LEAVES)
    assert [p.hex() for p in proof] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]


def tree(n):
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 31, 64, 100])
def test_every_inclusion_and_consistency_proof_verifies(n):
    leaves = tree(n)
    top = merkle.root(leaves)
    for i in range(n):
        merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(i, leaves), top)
    for m in range(1, n + 1):
        merkle.verify_consistency(m, n, merkle.root(leaves[:m]), top, merkle.consistency_proof(m, leaves))


def test_wrong_proofs_fail():
    leaves = tree(13)
    top = merkle.root(leaves)
    proof = merkle.inclusion_proof(5, leaves)
    with pytest.raises(merkle.ProofFailed):
        merkle.verify_inclusion(leaves[6], 5, 13, proof, top)
    with pytest.raises(merkle.ProofFailed):
        merkle.verify_inclusion(leaves[5], 5, 13, proof[:-1], top)
    rewritten = leaves[:3] + [merkle.leaf_hash(b"forged")] + leaves[4:]
    with pytest.raises(merkle.ProofFailed, match="rewritten"):
        merkle.verify_consistency(7, 13, merkle.root(rewritten[:7]), top, merkle.consistency_proof(7, leaves))
    with pytest.raises(merkle.ProofFailed):
        merkle.verify_consistency(13, 13, merkle.root(rewritten), top, [])
    with pytest.raises(merkle.ProofFailed):
        merkle.verify_consistency(8, 5, top, top, [])


def test_compact_range_matches_root_and_serialises():
    compact = merkle.CompactRange()
    leaves = tree(77)
    for i, leaf in enumerate(leaves, 1):
        compact.append(leaf)
        assert compact.root() == merkle.root(leaves[:i])
        restored = merkle.CompactRange.from_bytes(compact.size, compact.to_bytes())
        assert restored.root() == compact.root()
    assert len(compact.hashes) == bin(77).count("1")
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [leaves[0]])


# The RFC 9162 definitions written out literally (recursion over leaf lists, every
# subtree root recomputed): the reference the stored-subtree MerkleTree is checked against.

def reference_inclusion(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = merkle._split(n)
    if m < k:
        return reference_inclusion(m, leaves[:k]) + [merkle.root(leaves[k:])]
    return reference_inclusion(m - k, leaves[k:]) + [merkle.root(leaves[:k])]


def reference_consistency(m: int, leaves: list[bytes], complete: bool = True) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [merkle.root(leaves)]
    k = merkle._split(n)
    if m <= k:
        return reference_consistency(m, leaves[:k], complete) + [merkle.root(leaves[k:])]
    return reference_consistency(m - k, leaves[k:], False) + [merkle.root(leaves[:k])]


def test_tree_proofs_equal_the_rfc_definitions_for_every_size():
    """One tree grown leaf by leaf answers for every older size too, as a node does."""
    leaves = tree(70)
    grown = merkle.MerkleTree()
    for n in range(1, len(leaves) + 1):
        grown.extend(leaves[n - 1 : n])
        assert grown.root() == merkle.root(leaves[:n])
    for n in range(1, len(leaves) + 1):
        assert grown.root(n) == merkle.root(leaves[:n])
        for i in range(n):
            assert grown.inclusion_proof(i, n) == reference_inclusion(i, leaves[:n])
        for m in range(1, n + 1):
            assert grown.consistency_proof(m, n) == reference_consistency(m, leaves[:n])


def test_tree_refuses_what_it_cannot_prove():
    grown = merkle.MerkleTree(tree(10))
    with pytest.raises(ValueError, match="outside"):
        grown.inclusion_proof(10, 10)
    with pytest.raises(ValueError, match="outside"):
        grown.inclusion_proof(0, 11)
    with pytest.raises(ValueError, match="first"):
        grown.consistency_proof(0, 10)
    with pytest.raises(ValueError, match="first"):
        grown.consistency_proof(5, 11)
    with pytest.raises(ValueError, match="boundary"):
        grown.range_root(1, 3)
    with pytest.raises(ValueError, match="32 bytes"):
        grown.extend([b"short"])
    assert merkle.MerkleTree().root() == merkle.root([])
