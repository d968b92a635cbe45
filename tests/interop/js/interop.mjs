// BioFed's schemas and signed records, checked with independent JavaScript libraries.
//
//   node interop.mjs --schemas DIR --examples DIR --corpus FILE [--node URL]
//
// (a) Ajv 2020 in strict mode (with ajv-formats) compiles every schema file,
//     accepts the examples and refuses each mistake of the corpus where it is;
// (b) with --node, every record in the node's log is verified with Digital
//     Bazaar's Data Integrity libraries, the key resolved through the node's
//     controller document (the recipe of docs/developers.md).
// Prints a JSON report on stdout; exit status 1 when a check fails.

import fs from 'node:fs';
import path from 'node:path';
import {parseArgs} from 'node:util';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {createVerifyCryptosuite} from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import jsigs from 'jsonld-signatures';

const {values: args} = parseArgs({options: {
  schemas: {type: 'string'}, examples: {type: 'string'}, corpus: {type: 'string'}, node: {type: 'string'}}});
const readJson = file => JSON.parse(fs.readFileSync(file, 'utf8'));
const failures = [];

// --- (a) the schema files with Ajv

function parentOf(document, pointer) {
  const tokens = pointer.split('/').slice(1).map(t => t.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = tokens.pop();
  for (const token of tokens) document = document[token];
  return [document, Array.isArray(document) ? Number(last) : last];
}

function brokenRecord(valid, mistake) {
  const record = structuredClone(valid[mistake.base]);
  for (const [pointer, value] of Object.entries(mistake.set ?? {})) {
    const [parent, key] = parentOf(record, pointer);
    parent[key] = value;
  }
  for (const pointer of mistake.remove ?? []) {
    const [parent, key] = parentOf(record, pointer);
    delete parent[key];
  }
  return record;
}

// Where Ajv finds errors: the failing value, or the missing / extra member.
function errorPointers(errors) {
  const escape = name => String(name).replaceAll('~', '~0').replaceAll('/', '~1');
  return errors.map(({instancePath, keyword, params}) => {
    if (keyword === 'required') return `${instancePath}/${escape(params.missingProperty)}`;
    if (keyword === 'additionalProperties') return `${instancePath}/${escape(params.additionalProperty)}`;
    if (keyword === 'propertyNames') return `${instancePath}/${escape(params.propertyName)}`;
    return instancePath;
  });
}

function checkSchemas() {
  const files = fs.readdirSync(args.schemas).filter(name => name.endsWith('.json')).sort();
  const ajv = new Ajv2020({strict: true, allErrors: true});
  addFormats(ajv);
  const schemas = Object.fromEntries(files.map(name => [name, readJson(path.join(args.schemas, name))]));
  const report = {compiled: [], accepted: [], refused: []};
  for (const schema of Object.values(schemas)) ajv.addSchema(schema);
  const validators = {};
  for (const [name, schema] of Object.entries(schemas)) {
    try {
      validators[name.replace(/\.json$/, '')] = ajv.getSchema(schema.$id);
      report.compiled.push(name);
    } catch (error) {
      failures.push(`Ajv2020 strict refuses ${name}: ${error.message}`);
    }
  }
  const corpus = readJson(args.corpus);
  const valid = {};
  for (const name of ['actor', 'project', 'offer']) {
    valid[name] = {...readJson(path.join(args.examples, `${name}.json`)), ...corpus.signed};
    if (validators[name]?.(valid[name])) report.accepted.push(name);
    else failures.push(`Ajv refuses the ${name} example: ${JSON.stringify(validators[name]?.errors)}`);
  }
  for (const mistake of corpus.mistakes) {
    const validate = validators[mistake.base];
    if (!validate) continue;
    if (validate(brokenRecord(valid, mistake))) {
      failures.push(`Ajv accepts: ${mistake.mistake}`);
      continue;
    }
    const found = errorPointers(validate.errors);
    if (found.includes(mistake.pointer)) report.refused.push(mistake.mistake);
    else failures.push(`Ajv refuses "${mistake.mistake}" elsewhere: ${JSON.stringify(found)}`);
  }
  return report;
}

// --- (b) the node's signed records with Digital Bazaar's libraries

// The recipe: the controller document resolves every urn:biofed:<node>#<kid>.
function verifierFor(controller) {
  const suite = new DataIntegrityProof({cryptosuite: createVerifyCryptosuite()});
  const purpose = new jsigs.purposes.AssertionProofPurpose({controller});
  const documentLoader = async url => {
    const method = controller.verificationMethod.find(m => m.id === url);
    if (!method) throw new Error(`${url} is not a key of ${controller.id}`);
    return {contextUrl: null, documentUrl: url, document: method};
  };
  return async record => {
    const {verified, error} = await jsigs.verify(record, {suite, purpose, documentLoader});
    // BioFed's validity: a key signs before it expires (retired) or is revoked.
    const method = controller.verificationMethod.find(m => m.id === record.proof?.verificationMethod);
    const created = Date.parse(record.proof?.created);
    const inTime = Boolean(method) &&
      [method.expires, method.revoked].every(time => time === undefined || created < Date.parse(time));
    return {verified, inTime, error: error ? String(error.message ?? error[0]?.message ?? error) : null};
  };
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response.json();
}

async function checkRecords(base) {
  const controller = await getJson(`${base}/controller.json`);
  const verify = verifierFor(controller);
  const report = {controller: controller.id, entries: []};
  for (let next = '/log?after=0&limit=1000'; next;) {
    const page = await getJson(base + next);
    for (const {seq, record} of page.entries) {
      const result = await verify(record);
      report.entries.push({seq, id: record.id, key: record.proof.verificationMethod, ...result});
      if (!result.verified) failures.push(`seq ${seq} ${record.id} does not verify: ${result.error}`);
    }
    next = page.next;
  }
  // The checks can fail: a changed record, and a key the controller does not list.
  const record = report.entries.length ? (await getJson(`${base}/log?after=0&limit=1`)).entries[0].record : null;
  if (record) {
    if ((await verify({...record, version: record.version + 1})).verified) failures.push('a changed record verifies');
    const without = {...controller, verificationMethod: controller.verificationMethod.filter(
      m => m.id !== record.proof.verificationMethod)};
    if ((await verifierFor(without)(record)).verified) failures.push('a record verifies with its key unlisted');
  }
  return report;
}

const report = {schemas: checkSchemas()};
if (args.node) report.records = await checkRecords(args.node.replace(/\/$/, ''));
report.failures = failures;
console.log(JSON.stringify(report, null, 1));
process.exitCode = failures.length ? 1 : 0;
