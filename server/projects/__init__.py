"""Projects: the namespace runs live in."""
