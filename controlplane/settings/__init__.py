"""Settings, split by concern. Every value comes from the environment through
`vectorplane.config` (see the README's settings table)."""

from .api import *  # noqa: F403
from .base import *  # noqa: F403
from .database import *  # noqa: F403
from .workers import *  # noqa: F403
