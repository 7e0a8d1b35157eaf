"""Diffusion-based image synthesis built on diffusers."""

__all__: list[str] = []
