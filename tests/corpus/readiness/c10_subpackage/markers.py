import pluggy

hookimpl = pluggy.HookimplMarker("tailor")
