"""Domain errors: raised by services, turned into 400/403/404 pages or JSON by one handler module.

Messages are English templates marked with ``N_`` (found by `make extract-messages`) and translated
where they are shown, so this package needs no web framework.
"""


def N_(message: str) -> str:
    """Mark a message for translation; it is translated when shown, not here."""
    return message


class DomainError(Exception):
    """A problem to report to the person who asked, with a clear message."""

    status = 400

    def __init__(self, template: str, **params):
        self.template = template
        self.params = params
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message in English (the handler shows it translated)."""
        return self.template % self.params if self.params else self.template


class Invalid(DomainError):
    """The request's data is not acceptable."""

    status = 400


class NotAllowed(DomainError):
    """The user may not do or see this."""

    status = 403


class NotFound(DomainError):
    """There is no such thing (or the user may not know it exists)."""

    status = 404


class Conflict(DomainError):
    """Someone else changed the thing since the user loaded it."""

    status = 409


class TooManyRequests(DomainError):
    """Over a rate limit; ``retry_after`` is the number of seconds until it may try again."""

    status = 429

    def __init__(self, template: str, retry_after: int, **params):
        self.retry_after = retry_after
        super().__init__(template, **params)
