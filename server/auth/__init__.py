"""API keys per project with scopes, and who a request acts as."""
