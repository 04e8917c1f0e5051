"""The FUSE adapter (mfusepy) for Linux and macOS."""
