// The OpenFeature web SDK and its OFREP web provider, as published on npm, for
// tests/browser/test_ofrep_web_browser.py: built by `npm ci && npm run build`.
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";

window.TailorOpenFeature = { OpenFeature, ProviderEvents, OFREPWebProvider };
