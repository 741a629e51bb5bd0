import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class PasswordRules:
    SECTION = "security.password"
    EXPIRY = SECTION + ".expiry_days"

    @hookimpl
    def tailor_validate_setting(self, key, value):
        if key == self.EXPIRY and value > 90:
            return "expiry above 90 days is not allowed"
        if key == f"{self.SECTION}.min_length" and value < 10:
            return "at least 10 characters"
        return None


plugin = PasswordRules()
