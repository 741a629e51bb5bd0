async def test_api_works(api):
    data = await api.gql("{ tenants { slug } }")
    assert [t["slug"] for t in data["data"]["tenants"]] == ["acme", "other"]
