import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class DiscountPolicy:
    ceiling = 10

    def _capped(self, percent):
        return min(percent, 10)

    @hookimpl
    def tailor_resolve_settings(self, values):
        percent = values.get("sales.discount.max_percent", 0)
        if values.get("sales.discount.approval_required", False):
            percent = self._capped(percent)
        return {"sales.discount.max_percent": percent}


policy = DiscountPolicy()
