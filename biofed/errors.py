"""Two exception types shared across BioFed's parts.

`BiofedError`: something the user can act on; the command line prints it as one
line (as it does the trust code's own error types, see `biofed.cli`).
`NodeRefused`: why the aggregator refuses what a node sent, with a reason code.
"""


class BiofedError(Exception):
    """An error the user can act on. str() is one sentence naming what and where."""


class NodeRefused(Exception):
    """What a node sent, or how it answered, is not acceptable.

    `reason` is a stable code recorded against the node (e.g. `stale`,
    `too-large`, `rewritten`); str() is the sentence an operator reads.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
