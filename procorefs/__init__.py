"""procorefs: Procore Documents as a true drive.

The package is layered (see ``docs/architecture.md``): leaves (errors, clock, config), ``api``
(Procore's HTTP protocol), ``core`` (filesystem semantics), ``adapters`` (FUSE, WinFsp),
``app`` (composition root) and ``cli``. ``emulator`` is a local Procore-compatible server that
shares nothing with the client but the wire format.
"""

__version__ = "0.1.0"
