import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(tenant, key, value):
    errors = [rule(value) for rule in RULES.get(key, ())]
    errors = [e for e in errors if e]
    return "; ".join(errors) or None


RULES = {"ui.table.page_size": (lambda v: "too big" if v > 200 else None,)}
