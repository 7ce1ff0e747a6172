"""The pull-request loop: diagnostics as CI annotations (``annotations``), the generated GitHub workflow
(``workflow``). Nothing here is on the compile path; `mlc validate` imports ``annotations`` only for
``--format github|sarif``."""
