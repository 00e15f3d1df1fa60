"""The engine: checks and how they are found (registry), run (runner, context), judged and grouped
(results, diagnosis), configured (config: the one Options object) and compared (baseline).

It knows no check by name: checks come from the registry, fixtures from the fixture registry."""
