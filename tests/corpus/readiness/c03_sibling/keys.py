"""Every setting this customization touches, in one place."""

DELIMITER = "reporting.csv.delimiter"
EXPORT_FORMAT = "reporting.export.format"
