"""The ``personalize`` commands: one module per family (`main`, `serving`, `evaluation`, `checkpoints`,
`demo`, `health`), thin over the packages that do the work. The console script is `streams.cli`, which adds
``worker``.

May import every other engine package.
"""

__all__: list[str] = []
