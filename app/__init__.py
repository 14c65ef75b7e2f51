"""The composition root: the command line, the supervision tree built from the config, replay.

Everything that wires the layers together lives here and nowhere else:
:mod:`app.cli` is ``run.py`` (and the ``wanderer-realtime`` console script),
:mod:`app.system` builds the running tree, :mod:`app.replay` runs journal
events through the live pipeline again, and :mod:`app.benchmark` is what
``run.py bench`` measures.
"""
