"""Contract settings, margin tables and per-account sizing (issue 8 points 1-3).

- tables.py: the admin-edited tables (contract settings, margin per lot, trade-quality
  grades) behind cached getters, and their audited updates.
- contracts.py: the one answer to "lot size and freeze quantity of this contract".
- sizing.py: size_accounts(), the one per-account sizing used by the calculator, the
  strategy preview and the executor.
"""
