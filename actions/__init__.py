"""Thin Rasa SDK custom actions; the logic they call lives in ``bot/``."""
