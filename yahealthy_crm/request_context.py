from contextvars import ContextVar

# The current HTTP request's id, read by the audit service so every audit row names its request.
request_id_var: ContextVar[str] = ContextVar("request_id", default="")
