"""The protocol's shared rules (docs/protocol.md), written once.

    types      the record types and their kinds (§3)
    ids        node ids and proof verificationMethods (§2)
    times      RFC 3339 times, one-second resolution, clock skew
    validity   is a key valid at a time (§7): the one rule
    registry   the signed registry document (§7)
    join       join requests (§7)
    fetch      one size-, time- and origin-capped GET

Layering: `biofed.trust` <- `biofed.protocol` <- node, registry, aggregator
(which never import each other).
"""
