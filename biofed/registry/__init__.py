"""The registry: node identities, pinned keys, the signed registry document."""
