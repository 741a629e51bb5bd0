"""The ``tailor`` command line (typer)."""
