"""Pipelines of Conveyor components: DSL, artifacts, metadata, runners and the CLI."""
