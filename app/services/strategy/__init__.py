"""Strategy use cases: create, update, delete and template strategies (resolution and preview join later)."""
