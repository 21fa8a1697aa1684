"""The ``edgetune`` command line (Typer). Heavy imports happen inside commands."""
