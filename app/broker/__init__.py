"""The only code that talks to OpenAlgo: client adapter, typed errors, parsing, rate limits."""
