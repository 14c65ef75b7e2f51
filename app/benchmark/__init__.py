"""The end-to-end benchmark and the soak that ``run.py bench`` runs.

The micro-benchmarks of single parts live in the repository's ``bench/``
(``python -m bench.NAME``) and are not installed.
"""
