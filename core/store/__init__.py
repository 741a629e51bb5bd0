"""The store: ORM rows, the database, and the services that load and save model values."""
