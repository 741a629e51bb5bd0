"""The outside of Tailor: GraphQL schema, Starlette app, CLI. Thin: no domain logic."""
