"""Orchestration: use cases that combine models, domain rules and the broker adapter."""
