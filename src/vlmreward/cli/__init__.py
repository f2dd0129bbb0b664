"""The ``vlmreward`` command line (:mod:`vlmreward.cli.main`): ``vlmreward score``, ``vlmreward models``."""
