import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class DelimiterRule:
    def __init__(self):
        self.key = "reporting.csv.delimiter"
        self.export = "reporting.export.format"

    @hookimpl
    def tailor_resolve_settings(self, values):
        if values.get(self.export) == "csv":
            return {self.key: ";"}
        return {}


rule = DelimiterRule()
