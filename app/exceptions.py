"""The root of AlgoMirror's own exceptions."""


class AlgoMirrorError(Exception):
    """Base class: every error the app raises on purpose derives from it."""

    #: Message safe to show to the user (no secrets, no internals).
    user_message: str = "The operation failed."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.user_message)
        if message:
            self.user_message = message
