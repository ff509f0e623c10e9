"""Internals shared by every layer: pytree arithmetic (``tree``) and input checks (``checks``)."""
