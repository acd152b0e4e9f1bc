"""`luyue label test`: print the built-in sample label, no database needed.

    luyue label test --out /tmp/label.pdf
    luyue label test --size 76x130 --dpi 300 --out /tmp/label.zpl
    luyue label test --printer zpl://10.0.0.21:9100
    luyue label test --printer pack-1          (a name from LUYUE_PRINTERS, or a CUPS queue)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from .data import sample_label
from .labels import shipping_label_pdf
from .layout import SIZES, SSCC_MIN_X_MM, SUPPORTED_DPI, shipping_label_layout
from .printers import PrinterUnavailable, printers_from_env, resolve_printer, send_label
from .zpl import shipping_label_zpl


@click.command("test")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the label here: PDF, or ZPL if the name ends in .zpl.")
@click.option("--size", type=click.Choice(list(SIZES)), default=None,
              help="Label size in mm (default 100x150, or the printer's size).")
@click.option("--dpi", type=click.Choice([str(d) for d in SUPPORTED_DPI]), default=None,
              help="Printer resolution the barcodes are drawn for (default 203, or the printer's).")
@click.option("--printer", "printer_spec", metavar="NAME_OR_URL",
              help="Also send it to this printer: zpl://HOST[:PORT], cups://QUEUE, "
                   "a name from LUYUE_PRINTERS, or a CUPS queue name.")
def label_test(out: Path | None, size: str | None, dpi: str | None, printer_spec: str | None) -> None:
    """Print the built-in sample label (王小明, 上海市浦东新区) to a file or a printer."""
    label = sample_label()
    printer = None
    if printer_spec:
        try:
            printer = resolve_printer(printer_spec, printers_from_env())
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--printer") from None
    size = size or (printer.size if printer else "100x150")
    resolution = int(dpi) if dpi else (printer.dpi if printer else 203)
    if out is None and printer is None:
        out = Path("label-test.pdf")
    if not SIZES[size].sscc_meets_gs1:
        x_mm = shipping_label_layout(label, size, resolution).barcode("sscc").x_mm(resolution)
        click.echo(f"note: a {size} label is too narrow for a GS1 logistic-label SSCC; its SSCC is drawn "
                   f"with X = {x_mm:.3f} mm, below the GS1 minimum of {SSCC_MIN_X_MM} mm (100x150 conforms)",
                   err=True)
    if out is not None:
        if out.suffix.lower() == ".zpl":
            out.write_text(shipping_label_zpl(label, size, resolution), encoding="utf-8")
        else:
            out.write_bytes(shipping_label_pdf(label, size, resolution))
        click.echo(f"wrote {out} ({size} mm, {resolution} dpi, tracking {label.tracking_number})")
    if printer is not None:
        if resolution != printer.dpi:
            printer = replace(printer, dpi=resolution)
        try:
            send_label(printer, label, size)
        except PrinterUnavailable as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"sent to {printer.name} ({printer.kind}, {size} mm, {resolution} dpi)")
