"""The risk engine's orchestration (issue 10): risk events and account entry blocks (events.py).

The rules themselves are pure functions in app/domain/risk_rules.py; this package records what
they decided and acts on it.
"""
