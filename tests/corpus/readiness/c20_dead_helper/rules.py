def numbering(values):
    return _prefix(values)


def _prefix(values):
    return values.get("orders.numbering.prefix") or "SO-"


def _never_called():
    return "tax.rounding.per_line"
