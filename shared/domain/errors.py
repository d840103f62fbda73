"""Errors the domain raises for input it refuses; only the entry layer turns them into HTTP answers."""


class InvalidInput(ValueError):
    """A request the monitor refuses: a bad parameter, field or payload; the message names which.

    The same error reaches a CLI user as one line and an HTTP caller as a 400.
    """
