"""Blueprints: one per audience."""
