"""The storage layer: models, engine and sessions, chunk codec, series queries."""
