"""napari contributions that need no Qt: reader, writers, sample data, layer conversions.

Registered in ``napari.yaml``; the widgets live in :mod:`napari_cryorient.widgets`.
"""
