import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class Settings:
    def __init__(self, values):
        self.values = values

    def get(self, section, leaf, default=None):
        return self.values.get(f"{section}.{leaf}", default)


@hookimpl
def tailor_resolve_settings(values):
    settings = Settings(values)
    days = settings.get("security.password", "expiry_days", 90)
    length = settings.get("security.password", "min_length", 12)
    return {"security.lockout.max_attempts": 3 if days < 30 or length > 16 else 5}
