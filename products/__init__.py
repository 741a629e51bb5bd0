"""Sample host products, each a product plugin (``docs/product.md``)."""
