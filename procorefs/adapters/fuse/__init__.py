"""The FUSE adapter (mfusepy) for Linux and macOS.

``library`` loads mfusepy bound to libfuse 3 (never libfuse 2 on Linux), ``operations`` holds
the callbacks (one call into the core each), ``runner`` owns the libfuse options and runs a
mount until it is unmounted. Nothing here imports mfusepy at import time.
"""
