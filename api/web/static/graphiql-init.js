// GraphiQL for Tailor: every script is served by Tailor (no CDN). Send your token
// in the Headers tab: {"Authorization": "Bearer tlr_..."}. Headers are not persisted.
(function () {
  "use strict";
  var url = window.location.origin + window.location.pathname;
  var fetcher = GraphiQL.createFetcher({ url: url });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultHeaders: '{"Authorization": "Bearer "}',
      defaultQuery: "# Put your token in the Headers tab below, then run:\n{ tenants { slug name release } }\n",
    })
  );
})();
