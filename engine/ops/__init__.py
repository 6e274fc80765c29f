"""Operations: the settings object, the metrics container, the local stack, the worker registry and
checkpoint files.

The bottom of `engine`: imports `schemas` (and `models` for nothing but types), no other engine package.
"""

__all__: list[str] = []
