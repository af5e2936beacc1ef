// Validates OpenAPI documents with @apidevtools/swagger-parser (installed here by
// tools/install_deps.sh): checks each file against the OpenAPI schema of its version and
// resolves every $ref.
//
//   node tools/npm/validate_openapi.js FILE...
//
// Prints "valid: FILE (N paths)" per document; exits 1 naming the file and the error on the
// first invalid one.
"use strict";

const SwaggerParser = require("@apidevtools/swagger-parser");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: validate_openapi.js FILE...");
    process.exit(2);
  }
  for (const file of files) {
    try {
      // validate() dereferences the document it returns; count paths on a copy.
      const api = await SwaggerParser.validate(file);
      console.log(`valid: ${file} (${Object.keys(api.paths || {}).length} paths)`);
    } catch (err) {
      console.error(`invalid: ${file}: ${err.message}`);
      process.exit(1);
    }
  }
}

main(process.argv.slice(2));
