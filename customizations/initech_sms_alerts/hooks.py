"""SMS alerts on sensitive changes (the product has SMS since 2.0)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

#: messages "sent" (a real deployment would call the SMS gateway)
OUTBOX = []
WATCHED = ("security.", "hr.payroll.")


@hookimpl
def tailor_setting_changed(tenant, environment, key, old, new, actor):
    if key.startswith(WATCHED):
        where = environment or "all environments"
        OUTBOX.append(f"[{tenant}] {actor} changed {key} ({where}): {old!r} -> {new!r}")
