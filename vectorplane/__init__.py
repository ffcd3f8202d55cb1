"""Vectorplane runtime: configuration, embedded services and the process supervisor.

This package never imports Django, so the supervisor and (later) the data-plane gateway can
use it without loading the control plane.
"""

__version__ = "0.1.0"
