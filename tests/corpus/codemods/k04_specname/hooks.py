import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


class Footer:
    @hookimpl(specname="acme_invoice_footer")  # the footer hook
    def footer(self, invoice):
        return "Invoice " + str(invoice["number"])


footer = Footer()
