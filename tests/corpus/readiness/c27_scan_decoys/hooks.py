import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    count = len(values)
    names = sorted(values.keys())
    shown = [values[name] for name in names if name.startswith("ui.")]
    for _name in values:
        count += 0
    logo = values.get("billing.invoice.logo_url")
    return {"ui.table.page_size": max(10, min(count, 50))} if logo and shown else {}
