"""Derive's PMRM_2 portfolio margin (derivexyz/v2-core), written from its public contracts.

Derive's specifics live here, apart from the engine's own model: its parameters
(``engine.derive.params``), its portfolio (``engine.derive.portfolio``), its shock formulas
(``engine.derive.shocks``), its pricing (``engine.derive.pricing``), the margin itself
(``engine.derive.model``), its published test cases (``engine.derive.cases``,
``engine.derive.report``) and the stream's accounts under it (``engine.derive.accounts``).
"""
