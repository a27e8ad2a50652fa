"""Conveyor's components: one subpackage per pipeline step."""
