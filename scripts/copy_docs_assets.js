// Copy the API documentation pages' assets (Swagger UI, ReDoc) from the npm packages pinned
// in package.json into registry/static/, where the registry serves them itself (no CDN), and
// write registry/static/assets.json: each file's package, version and SHA-256.
// Run after changing a pin: `npm install && npm run docs-assets`.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const STATIC = path.join(ROOT, "registry", "static");
const FILES = {
  "swagger-ui-dist": {
    into: "swagger-ui",
    files: [
      "swagger-ui-bundle.js",
      "swagger-ui-bundle.js.LICENSE.txt",
      "swagger-ui.css",
      "favicon-32x32.png",
      "LICENSE",
      "NOTICE",
    ],
  },
  redoc: {
    into: "redoc",
    files: ["bundles/redoc.standalone.js", "bundles/redoc.standalone.js.LICENSE.txt", "LICENSE"],
  },
};

const manifest = {};
for (const [name, { into, files }] of Object.entries(FILES)) {
  const packageDir = path.join(ROOT, "node_modules", name);
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json")));
  fs.mkdirSync(path.join(STATIC, into), { recursive: true });
  for (const file of files) {
    const data = fs.readFileSync(path.join(packageDir, file));
    const target = `${into}/${path.basename(file)}`;
    fs.writeFileSync(path.join(STATIC, target), data);
    const sha256 = crypto.createHash("sha256").update(data).digest("hex");
    manifest[target] = { package: name, version, source: file, sha256 };
  }
}
fs.writeFileSync(path.join(STATIC, "assets.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`copied ${Object.keys(manifest).length} files into ${path.relative(ROOT, STATIC)}`);
