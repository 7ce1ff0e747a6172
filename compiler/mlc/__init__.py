"""mlc: the MLOps spec compiler. See README.md for the pipeline: load -> validate -> plan -> backends/runtime."""

__version__ = "0.1.0"
