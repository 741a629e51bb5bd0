"""Every setting this customization touches, in one place."""

# the page size of list views (renamed in 3.1)
PAGE_SIZE = "ui.table.page_size"
THEME = "ui.theme.mode"
