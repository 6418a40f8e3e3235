"""The HTTP server: the app, its limits, its workers."""
