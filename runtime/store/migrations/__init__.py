"""Alembic's script directory of the store (``env.py``, ``versions/``), shipped inside the package."""
