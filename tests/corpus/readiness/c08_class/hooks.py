import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class AuditTrail:
    """Per-setting resolution and change audit, class style."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def tailor_resolve_setting(self, key, value):
        self.seen.append(key)
        return value

    @hookimpl
    def tailor_setting_changed(self, tenant, key, new):
        self.seen.append((tenant, key, new))


plugin = AuditTrail()
