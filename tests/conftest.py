"""Shared fixtures. Each stage's session fixtures live in its own module so that the chain reads in order:
a tiny generated corpus -> a tiny trained model -> its int8 export. Every test uses real generated data."""

from fixtures_data import *  # noqa: F403
from fixtures_export import *  # noqa: F403
from fixtures_model import *  # noqa: F403
