"""Measuring the assistant: evaluation set, scoring, baselines, benchmark and report."""
