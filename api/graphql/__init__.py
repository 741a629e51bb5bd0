"""The GraphQL interface (strawberry): schema, types, resolvers, limits, error mapping."""
