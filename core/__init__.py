"""Tailor's domain: settings, tenants, releases, audit, tokens.

Nothing here imports GraphQL or pluggy internals; customization hooks reach the
domain through the small :class:`core.model.hooks.TenantHooks` protocol.
"""
