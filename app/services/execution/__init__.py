"""Order execution: intents, sending, reconciliation, exits, kill switch."""
