"""Names the penguin module file shares with its tests: a helper module kept beside it, as TFX
users keep theirs (the module file imports it by name while its functions run)."""

NUMERIC_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
LABEL = "species"
SPECIES = 3


def xf(name: str) -> str:
    """The transformed feature of a raw one."""
    return f"{name}_xf"
