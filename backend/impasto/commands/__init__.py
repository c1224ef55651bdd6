"""Sub-commands of the `impasto` CLI, one module each (discovered by impasto.cli)."""
