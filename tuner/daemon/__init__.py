"""The daemon (DESIGN §3, Serve flow): settings, service loop, control socket, drift watch, systemd notify.

Nothing heavy is imported here: ``edgetune status`` imports
:mod:`tuner.daemon.protocol` through this package.
"""
