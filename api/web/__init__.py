"""The release managers' console (``/console``): server-rendered pages (Jinja2,
autoescaped), a session cookie after one sign-in, CSRF tokens on every form,
and every asset served by Tailor itself (no CDN). Domain logic stays in
``core`` (triage, runs, usage); these modules only read requests and render."""
