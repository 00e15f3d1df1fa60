"""Measurements: the fixtures checks are computed from (probes, oracle runs, the learned-behaviour
probes, the toy training, the samples) and the maths they use (oracles, parameterisations,
spectra statistics). Fixtures measure; they never judge: every verdict is a check's."""


def builtin_fixtures() -> tuple:
    """The built-in fixtures, listed module by module (each module's ``FIXTURES``): what the fixture
    registry starts from. Imported here, when asked, so that importing one measurement imports no other."""
    from diffcheck.measure import consistency, learned, probes, samples, toy

    return (*probes.FIXTURES, *consistency.FIXTURES, *learned.FIXTURES, *toy.FIXTURES, *samples.FIXTURES)
