// compare.js TOOL FILE... - differential test of Caravan's HCL parser against the npm
// oracle @cdktf/hcl2json (HCL 2.x compiled to WASM; hcl.md §7.1).
//
// For every file: both must accept it or both must reject it. When both accept, the
// hcl2json-shaped trees must be deeply equal (object keys unordered, numbers as doubles).
// When both reject, the first diagnostic's "file:L,C-C: Summary" must match.
// Known oracle artefacts are skipped as hcl.md §7.2 says: files containing "$${" or "%%{"
// (the oracle renders them like interpolations), "::" and numbers beyond 2^53.
// Prints "N passed, N failed" and exits 1 on any mismatch.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");
const hcl = require("@cdktf/hcl2json");

function norm(v) {
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = norm(v[k]);
    return o;
  }
  return v;
}

function firstDiag(msg) {
  // "parse config: [f:1,2-3: Summary; Detail f:...]" -> "f:1,2-3: Summary"
  const m = /([^\s\[]+:\d+,\d+-\d+(?:,\d+)?): ([^;]+);/.exec(msg);
  return m ? `${m[1]}: ${m[2]}` : msg;
}

async function main() {
  const [tool, ...files] = process.argv.slice(2);
  const out = execFileSync(tool, files, { encoding: "utf8", maxBuffer: 64 << 20 }).split("\n");
  let pass = 0, fail = 0, skip = 0;
  for (let i = 0; i < files.length; i++) {
    const text = fs.readFileSync(files[i], "utf8");
    const name = path.basename(files[i]);
    if (/\$\$\{|%%\{|::|\d{16,}/.test(text)) { skip++; continue; }
    let want, werr = null;
    try { want = await hcl.parse(name, text); } catch (e) { werr = String(e); }
    const line = out[i] || "";
    const gerr = line.startsWith("ERROR ") ? line.slice(6) : null;
    let ok;
    if (werr !== null || gerr !== null) {
      ok = werr !== null && gerr !== null && firstDiag(werr) === firstDiag(gerr);
      if (!ok) console.log(`MISMATCH ${files[i]}\n  oracle: ${werr ? firstDiag(werr) : "ok"}\n  ours:   ${gerr ? firstDiag(gerr) : "ok"}`);
    } else {
      const got = JSON.parse(line);
      ok = JSON.stringify(norm(got)) === JSON.stringify(norm(want));
      if (!ok) console.log(`MISMATCH ${files[i]}\n  oracle: ${JSON.stringify(norm(want))}\n  ours:   ${JSON.stringify(norm(got))}`);
    }
    if (ok) pass++; else fail++;
  }
  console.log(`${pass} passed, ${fail} failed, ${skip} skipped`);
  process.exit(fail ? 1 : 0);
}
main();
