"""``mrct drr``: digitally reconstructed radiographs of a CT volume (:mod:`mrct.jobs.drr`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._app import app, fail_on


@app.command()
def drr(
    volume: Path = typer.Argument(..., help="CT in HU: a NIfTI file or a DICOM series folder."),
    view: list[str] = typer.Option(
        None, "--view", help="ap, pa, lateral, right-lateral (repeatable; default ap)."
    ),
    lao: list[float] = typer.Option(
        None, "--lao", help="C-arm LAO (+) / RAO (-) angle in degrees (repeatable)."
    ),
    cranial: float = typer.Option(0.0, help="C-arm cranial (+) / caudal (-) angle (degrees)."),
    out: Path = typer.Option(Path("drr_out"), "-o", "--out", help="Output folder."),
    height: int = typer.Option(512, min=1, help="Detector rows."),
    width: int = typer.Option(None, min=1, help="Detector columns (default: height)."),
    pixel_spacing: float = typer.Option(
        None, help="Detector pixel size in mm (default: 40 cm panel)."
    ),
    sdd: float = typer.Option(1020.0, help="Source-to-detector distance (mm)."),
    sid: float = typer.Option(850.0, help="Source-to-isocentre distance (mm)."),
    renderer: str = typer.Option("siddon", help="siddon or trilinear."),
    attenuation: str = typer.Option("physical", help="HU to mu convention."),
    energy: float = typer.Option(70.0, help="Effective energy (keV)."),
    output: str = typer.Option("integral", help="integral, intensity or neglog."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
):
    """Render DRRs of a CT volume; write one PNG (windowed) and one NIfTI (values) per view."""
    from ..jobs.drr import render_drrs

    with fail_on("drr"):
        render_drrs(volume, out, views=view, lao=lao, cranial=cranial, height=height,
                    width=width, pixel_spacing=pixel_spacing, sdd=sdd, sid=sid,
                    renderer=renderer, attenuation=attenuation, energy=energy, output=output,
                    overwrite=force, log=typer.echo)  # fmt: skip
