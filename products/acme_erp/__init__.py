"""Acme ERP: the sample host product, as a product plugin.

Registered in the entry-point group ``tailor.product`` (``pyproject.toml``); the
directory holds ``product.toml``, one catalog per release under ``releases/``, the
planned 3.0 under ``planned/`` and Acme's extension points in ``hookspecs.py``.
Tailor's code never imports it: the demo and the tests load it as any product.
"""
