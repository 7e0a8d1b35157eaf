"""Reconstructors: classical (FBP, SIRT, CG-SENSE, TV-PDHG) and learned."""

__all__: list[str] = []
