"""The ``meddenoise`` command: one subcommand per module."""
