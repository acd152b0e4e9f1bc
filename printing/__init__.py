"""Label, packing-slip and manifest layout, and sending labels to printers.

Pure layout code: no database, no Flask. The pack and ship screens build the
dataclasses in `printing.data` and call:

- `printing.labels`: `shipping_label_pdf`, `batch_labels_pdf`, `packing_slip_pdf`, `manifest_pdf`
- `printing.zpl`: `shipping_label_zpl`, `batch_labels_zpl`
- `printing.printers`: `parse_printer`, `resolve_printer`, `send_label`, `send_labels`, `PrinterUnavailable`
- `printing.gs1`: `make_sscc`, `validate_sscc`, `mask_phone`
- `printing.cli`: `label_test`, registered by the app as `luyue label test`

Labels are laid out once, in whole dots of the target printer (`printing.layout`),
and drawn from that layout as PDF or as ZPL.
"""
