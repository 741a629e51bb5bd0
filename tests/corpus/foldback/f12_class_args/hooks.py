import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class Fees:
    """Late fees, the way the Globex team writes them."""

    def _read(self, values, key, default):
        return values.get(key, default)

    @hookimpl
    def tailor_resolve_settings(self, values):
        rate = self._read(values, "billing.late_fee.rate", 0)
        days = self._read(values, "billing.invoice.due_days", 30)
        if days > 60:
            rate *= 2.5  # doubled and a half for long terms
        answer = {}
        answer["billing.late_fee.rate"] = round(rate, 2)
        if rate > 0:
            answer["billing.late_fee.enabled"] = True
        return answer


plugin = Fees()
