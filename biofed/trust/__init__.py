"""Trust primitives shared by node, registry and aggregator.

One implementation of canonical JSON, the strict JSON profile, Ed25519 keys,
Data Integrity proofs (eddsa-jcs-2022), the RFC 9162 Merkle log and signed
checkpoints. Nothing here does I/O beyond reading and writing key files.
"""
