"""Label, packing-slip and manifest layout, and sending labels to printers.

Pure layout code: no database, no Flask. The pack and ship screens build the
dataclasses in `printing.data` and call the functions below.
"""
