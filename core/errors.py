"""Domain errors. The API maps each to one HTTP status and the shape
``{"error": {"message", "type", "code"}}``; the CLI prints the message to stderr and exits non-zero."""

from __future__ import annotations


class ChronotopeError(Exception):
    """Base class. ``code`` is a stable machine-readable string; ``status`` the HTTP status."""

    code = "internal_error"
    status = 500
    type = "server_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidInputError(ChronotopeError):
    code = "invalid_input"
    status = 400
    type = "invalid_request_error"


class UnknownFormatError(InvalidInputError):
    code = "unknown_format"


class NotFoundError(ChronotopeError):
    code = "not_found"
    status = 404
    type = "not_found_error"


class AuthError(ChronotopeError):
    code = "unauthorized"
    status = 401
    type = "authentication_error"


class ForbiddenError(ChronotopeError):
    code = "forbidden"
    status = 403
    type = "permission_error"


class ConflictError(ChronotopeError):
    code = "conflict"
    status = 409
    type = "invalid_request_error"


class RetryAfterError(ChronotopeError):
    """An error the client should retry after ``retry_after_s`` (the API sends ``Retry-After``)."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RetryLaterError(RetryAfterError):
    """Nothing is wrong with the request, but it cannot be answered yet (a served recommendation
    whose trace waits for the store); 503."""

    code = "not_stored_yet"
    status = 503
    type = "server_error"


class RateLimitedError(RetryAfterError):
    """Too many requests from one key; ``retry_after_s`` says when a request will pass."""

    code = "rate_limited"
    status = 429
    type = "rate_limit_error"


class NotReadyError(ChronotopeError):
    """A part the request needs is not built yet (no profiles mined, no index)."""

    code = "not_ready"
    status = 503
    type = "server_error"


class LLMUnavailableError(ChronotopeError):
    """The LLM could not answer in time; callers fall back to the feature ranker."""

    code = "llm_unavailable"
    status = 503
    type = "server_error"


class ProvisioningError(ChronotopeError):
    """The local model or its runtime could not be provisioned (missing part, bad checksum, ...)."""

    code = "provisioning_failed"
    status = 500
    type = "server_error"
