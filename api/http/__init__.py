"""The HTTP interface (Starlette): the app, authentication, protocol guard, caching, metrics."""
