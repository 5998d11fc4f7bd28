// Parses an AsyncAPI document with the official @asyncapi/parser and prints its diagnostics as JSON lines.
// Usage: node asyncapi_parse.cjs <node_modules folder> <document>. Exit 0 when parsed without an error.
const path = require("node:path");
const fs = require("node:fs");

async function main() {
  const [modules, file] = process.argv.slice(2);
  const { Parser } = require(path.resolve(modules, "@asyncapi", "parser"));
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"));
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  const errors = diagnostics.filter((d) => d.severity === 0);
  if (document === undefined || errors.length > 0) {
    process.exit(1);
  }
  const channels = document.channels().all().map((c) => c.address());
  console.log(JSON.stringify({ parsed: true, version: document.version(), channels }));
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
