"""Data-plane gateway."""
