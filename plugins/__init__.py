"""The plugin runtime: Tailor's hookspecs (the extension-point catalog), loading
consultant customizations, introspecting them, and calling them per tenant."""
