"""The one exception type the command line turns into a readable line."""


class BiofedError(Exception):
    """An error the user can act on. str() is one sentence naming what and where."""
