"""Diagnoses: findings about a run, from the rules (worker) and the SDK's model checks."""
