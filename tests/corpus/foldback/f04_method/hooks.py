import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class LateFees:
    def _rate(self, values):
        rate = values.get("billing.late_fee.rate", 0)
        days = values.get("billing.invoice.due_days", 30)
        if days > 45:
            rate = rate * 2
        return rate

    @hookimpl
    def tailor_resolve_settings(self, values):
        rate = self._rate(values)
        answer = {"billing.late_fee.rate": round(rate, 2)}
        if rate > 0:
            answer["billing.late_fee.enabled"] = True
        return answer


plugin = LateFees()
