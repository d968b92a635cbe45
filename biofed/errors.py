"""The one exception type the command line turns into a readable line."""


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
