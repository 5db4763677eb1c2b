"""The Losslens server: REST API, storage, CLI."""
