#!/usr/bin/env node
// Offline validation of deploy/: no cluster, no image build, no network.
//
//  1. Renders every kustomization (overlays, secrets, optional parts) with
//     `kubectl kustomize` when kubectl is installed, and always with the
//     small kustomize subset implemented here (resources, generators with
//     kustomize's hash suffix, strategic-merge patches, images, namespace,
//     name references); the two renderings must agree. Debian ships no
//     kubectl, so on a machine without it the built-in one stands in.
//  2. Validates every rendered document against the JSON schema that the
//     npm package kubernetes-models compiles with ajv, plus a strict
//     unknown-field check from the same package's type declarations (the
//     schemas allow unknown fields; the API server drops them silently).
//     KEDA objects are checked against the hand-written schemas below.
//  3. Cross-references: ConfigMaps, Secrets, keys, Services, ports, probes,
//     selectors, PDBs, NetworkPolicies, autoscalers, mounted files; the
//     worker's drain window against the workflows' step timeouts; the
//     security context of every pod.
//  4. yamllint on deploy/ (deploy/.yamllint).
//  5. The Dockerfile: dockerfilelint, then structural rules.
//  6. The Redis config and ACL in a real redis-server: it must start with
//     them, every user must log in with the password its REDIS_URL holds,
//     and ACL DRYRUN must allow each user what it needs (including every
//     command the Lua transitions call) and refuse what it must not do.
//  7. deploy/k8s/make-secrets.sh: writes consistent, hashed secrets.
//
// Prints one line per check and "N passed, N failed, N skipped"; exits 1
// on any failure. A skip is printed with its reason: a file that another
// part of the project has not added yet (workflows/personas.yml) is
// replaced by a placeholder for rendering, and kubectl may be absent.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const cp = require('child_process');
const YAML = require('yaml');
const Ajv = require('ajv');

const ROOT = path.resolve(process.env.WEFT_SOURCE_ROOT || path.join(__dirname, '..', '..'));
const DEPLOY = path.join(ROOT, 'deploy');
const K8S = path.join(DEPLOY, 'k8s');

// ---- reporting -----------------------------------------------------------

let passed = 0;
let failed = 0;
let skipped = 0;

function check(name, fn) {
  try {
    const r = fn();
    if (r && r.skip) {
      skipped++;
      console.log(`skip ${name}: ${r.skip}`);
    } else {
      passed++;
      console.log(`ok   ${name}`);
    }
  } catch (e) {
    failed++;
    const msg = String(e && e.message ? e.message : e).split('\n').join('\n       ');
    console.log(`FAIL ${name}\n       ${msg}`);
  }
}

// Collects problems and throws them together.
class Problems {
  constructor() { this.list = []; }
  add(msg) { this.list.push(msg); }
  expect(cond, msg) { if (!cond) this.add(msg); }
  done() { if (this.list.length) throw new Error(this.list.join('\n')); }
}

function warn(msg) { console.log(`warn ${msg}`); }

// ---- small helpers -------------------------------------------------------

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const clone = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

function stable(v) {
  if (Array.isArray(v)) return v.map(stable);
  if (isObj(v)) {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = stable(v[k]);
    return o;
  }
  return v;
}

function firstDiff(a, b, p = '') {
  if (JSON.stringify(stable(a)) === JSON.stringify(stable(b))) return null;
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDiff(a[k], b[k], `${p}.${k}`);
      if (d) return d;
    }
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) {
      const d = firstDiff(a[i], b[i], `${p}[${i}]`);
      if (d) return d;
    }
  }
  return `${p || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`.slice(0, 400);
}

function parseYamlDocs(text, file) {
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  const out = [];
  for (const d of docs) {
    if (d.errors && d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    const js = d.toJS({ maxAliasCount: 100 });
    if (js !== null && js !== undefined) out.push(js);
  }
  return out;
}

function which(cmd) {
  const r = cp.spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return r;
}

function copyDir(src, dst) {
  fs.cpSync(src, dst, {
    recursive: true,
    filter: (s) => !/(^|\/)(node_modules|\.cache)(\/|$)/.test(path.relative(src, s)),
  });
}

const resKey = (d) => `${d.kind}/${(d.metadata && d.metadata.namespace) || ''}/${d.metadata && d.metadata.name}`;
const resName = (d) => `${d.kind}/${d.metadata && d.metadata.name}`;

function findModuleDir(name) {
  const main = require.resolve(name);
  let dir = path.dirname(main);
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

// ---- the kustomize subset --------------------------------------------------
//
// What deploy/k8s uses, nothing more: resources (files and directories),
// configMapGenerator / secretGenerator (files, envs, literals; options and
// generatorOptions: disableNameSuffixHash, labels, annotations), patches
// (strategic merge from files, `$patch: delete`, null deletes a field),
// images, namespace, and the name references of pod specs to generated
// ConfigMaps and Secrets. Anything else is an error, so that a new feature
// in the manifests is noticed here.

const KNOWN_KUSTOMIZATION_KEYS = new Set([
  'apiVersion', 'kind', 'resources', 'configMapGenerator', 'secretGenerator',
  'generatorOptions', 'patches', 'images', 'namespace',
]);

// Strategic-merge keys of the lists deploy/k8s patches (Kubernetes' own
// patchMergeKey values); other lists are replaced whole, as in kustomize.
const MERGE_KEYS = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
};

function smp(base, patch) {
  if (!isObj(base) || !isObj(patch)) return clone(patch);
  const out = clone(base);
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch') continue;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v) && MERGE_KEYS[k] && Array.isArray(out[k])) {
      // As kustomize (kyaml) orders them: the patch's items first (merged
      // into the matching original), then the originals it did not name.
      const key = MERGE_KEYS[k];
      const merged = v.map((item) => {
        const orig = out[k].find((x) => isObj(x) && isObj(item) && x[key] === item[key]);
        return orig ? smp(orig, item) : clone(item);
      });
      const rest = out[k].filter((x) => !v.some((item) => isObj(x) && isObj(item) && x[key] === item[key]));
      out[k] = [...merged, ...rest];
    } else if (isObj(v) && isObj(out[k])) {
      out[k] = smp(out[k], v);
    } else {
      out[k] = clone(v);
    }
  }
  return out;
}

// Go's encoding/json escapes these; kustomize hashes Go's encoding.
function goJson(v) {
  return JSON.stringify(stable(v))
    .replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

// kustomize's hasher looks the name up with the path "metadata/name" as one
// field name, finds nothing and hashes an empty name: the suffix depends on
// the kind, the type and the data only. Mirrored here so the two agree.
function kustomizeHash(obj) {
  let m;
  if (obj.kind === 'ConfigMap') {
    m = { kind: 'ConfigMap', name: '', data: obj.data || {} };
    if (obj.binaryData && Object.keys(obj.binaryData).length) m.binaryData = obj.binaryData;
  } else {
    m = { kind: 'Secret', type: obj.type, name: '', data: obj.data || {} };
  }
  const hex = crypto.createHash('sha256').update(goJson(m)).digest('hex');
  const map = { 0: 'g', 1: 'h', 3: 'k', a: 'm', e: 't' };
  return hex.slice(0, 10).split('').map((c) => map[c] || c).join('');
}

function parseEnvFile(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i < 0) throw new Error(`env line without '=': ${line}`);
    out.push([line.slice(0, i).trimStart(), line.slice(i + 1)]);
  }
  return out;
}

function generate(dir, gen, kind, globalOpts) {
  const data = {};
  const put = (k, v) => {
    if (k in data) throw new Error(`${kind} ${gen.name}: duplicate key ${k}`);
    data[k] = kind === 'Secret' ? Buffer.from(v, 'utf8').toString('base64') : v;
  };
  for (const f of gen.files || []) {
    const eq = f.indexOf('=');
    const key = eq >= 0 ? f.slice(0, eq) : path.basename(f);
    const file = path.resolve(dir, eq >= 0 ? f.slice(eq + 1) : f);
    put(key, fs.readFileSync(file, 'utf8'));
  }
  for (const e of gen.envs || []) {
    for (const [k, v] of parseEnvFile(fs.readFileSync(path.resolve(dir, e), 'utf8'))) put(k, v);
  }
  for (const l of gen.literals || []) {
    const i = l.indexOf('=');
    put(l.slice(0, i), l.slice(i + 1));
  }
  const opts = { ...(globalOpts || {}), ...(gen.options || {}) };
  const labels = { ...((globalOpts || {}).labels || {}), ...((gen.options || {}).labels || {}) };
  const annotations = { ...((globalOpts || {}).annotations || {}), ...((gen.options || {}).annotations || {}) };
  const obj = { apiVersion: 'v1', kind, metadata: { name: gen.name } };
  if (Object.keys(labels).length) obj.metadata.labels = labels;
  if (Object.keys(annotations).length) obj.metadata.annotations = annotations;
  if (kind === 'Secret') obj.type = gen.type || 'Opaque';
  obj.data = data;
  const orig = gen.name;
  if (!opts.disableNameSuffixHash) obj.metadata.name = `${gen.name}-${kustomizeHash(obj)}`;
  return { obj, orig };
}

function podSpecOf(d) {
  if (!d || !d.spec) return null;
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(d.kind)) {
    return d.spec.template && d.spec.template.spec;
  }
  if (d.kind === 'CronJob') return d.spec.jobTemplate.spec.template.spec;
  if (d.kind === 'Pod') return d.spec;
  return null;
}

function containersOf(spec) {
  return [...(spec.initContainers || []), ...(spec.containers || [])];
}

// Calls fn(kind, holder, field) for every reference of a pod spec to a
// ConfigMap or Secret by name.
function eachPodRef(spec, fn) {
  for (const v of spec.volumes || []) {
    if (v.configMap) fn('ConfigMap', v.configMap, 'name');
    if (v.secret) fn('Secret', v.secret, 'secretName');
    for (const s of (v.projected && v.projected.sources) || []) {
      if (s.configMap) fn('ConfigMap', s.configMap, 'name');
      if (s.secret) fn('Secret', s.secret, 'name');
    }
  }
  for (const c of containersOf(spec)) {
    for (const e of c.env || []) {
      const vf = e.valueFrom || {};
      if (vf.configMapKeyRef) fn('ConfigMap', vf.configMapKeyRef, 'name');
      if (vf.secretKeyRef) fn('Secret', vf.secretKeyRef, 'name');
    }
    for (const e of c.envFrom || []) {
      if (e.configMapRef) fn('ConfigMap', e.configMapRef, 'name');
      if (e.secretRef) fn('Secret', e.secretRef, 'name');
    }
  }
  for (const s of spec.imagePullSecrets || []) fn('Secret', s, 'name');
}

function splitImage(image) {
  let digest = '';
  let rest = image;
  const at = rest.indexOf('@');
  if (at >= 0) { digest = rest.slice(at + 1); rest = rest.slice(0, at); }
  let tag = '';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) { tag = rest.slice(colon + 1); rest = rest.slice(0, colon); }
  return { name: rest, tag, digest };
}

function buildKustomization(dir) {
  const kfile = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
    .map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!kfile) throw new Error(`${dir}: no kustomization.yaml`);
  const k = YAML.parse(fs.readFileSync(kfile, 'utf8'));
  for (const key of Object.keys(k)) {
    if (!KNOWN_KUSTOMIZATION_KEYS.has(key)) {
      throw new Error(`${kfile}: '${key}' is not implemented by validate.js's kustomize subset`);
    }
  }
  let res = [];
  const renames = []; // [{kind, from, to}]
  for (const r of k.resources || []) {
    const p = path.resolve(dir, r);
    if (fs.statSync(p).isDirectory()) {
      const sub = buildKustomization(p);
      res.push(...sub.resources);
      renames.push(...sub.renames);
    } else {
      res.push(...parseYamlDocs(fs.readFileSync(p, 'utf8'), p));
    }
  }
  for (const [field, kind] of [['configMapGenerator', 'ConfigMap'], ['secretGenerator', 'Secret']]) {
    for (const g of k[field] || []) {
      const { obj, orig } = generate(dir, g, kind, k.generatorOptions);
      res.push(obj);
      if (obj.metadata.name !== orig) renames.push({ kind, from: orig, to: obj.metadata.name });
    }
  }
  for (const p of k.patches || []) {
    if (!p.path || p.target) throw new Error(`${kfile}: only 'patches: - path:' is implemented`);
    const file = path.resolve(dir, p.path);
    for (const doc of parseYamlDocs(fs.readFileSync(file, 'utf8'), file)) {
      const i = res.findIndex((x) => x.kind === doc.kind && x.metadata.name === doc.metadata.name);
      if (i < 0) throw new Error(`${file}: patch target ${doc.kind}/${doc.metadata.name} not found`);
      if (doc.$patch === 'delete') res.splice(i, 1);
      else res[i] = smp(res[i], doc);
    }
  }
  for (const img of k.images || []) {
    for (const d of res) {
      const spec = podSpecOf(d);
      if (!spec) continue;
      for (const c of containersOf(spec)) {
        const s = splitImage(c.image);
        if (s.name !== img.name) continue;
        const name = img.newName || s.name;
        if (img.digest) c.image = `${name}@${img.digest}`;
        else if (img.newTag !== undefined) c.image = `${name}:${img.newTag}`;
        else c.image = `${name}${s.tag ? `:${s.tag}` : ''}${s.digest ? `@${s.digest}` : ''}`;
      }
    }
  }
  if (k.namespace) {
    for (const d of res) d.metadata.namespace = k.namespace;
  }
  // Name references: pod specs follow generated names (hash suffixes).
  for (const d of res) {
    const spec = podSpecOf(d);
    if (!spec) continue;
    eachPodRef(spec, (kind, holder, field) => {
      const r = renames.find((x) => x.kind === kind && x.from === holder[field]);
      if (r) holder[field] = r.to;
    });
  }
  res = res.map((d) => JSON.parse(JSON.stringify(d)));
  return { resources: res, renames };
}

// ---- schemas ---------------------------------------------------------------

const KM_DIR = findModuleDir('kubernetes-models');
const APIMACHINERY_DIR = (() => {
  // kubernetes-models depends on it; resolve from kubernetes-models' place.
  const main = require.resolve('@kubernetes-models/apimachinery', { paths: [KM_DIR] });
  let dir = path.dirname(main);
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();

function groupOf(apiVersion) {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

function k8sModel(apiVersion, kind) {
  const { group, version } = groupOf(apiVersion);
  const g = group === '' ? 'Core' : group.split('.')[0].replace(/^./, (c) => c.toUpperCase());
  const v = version.replace(/^./, (c) => c.toUpperCase());
  const id = `IoK8sApi${g}${v}${kind}`;
  const schemaFile = path.join(KM_DIR, '_schemas', `${id}.js`);
  const dts = path.join(KM_DIR, group, version, `${kind}.d.ts`);
  if (!fs.existsSync(schemaFile) || !fs.existsSync(dts)) return null;
  return { id, validate: require(schemaFile).validate, dts };
}

// Strict fields: the property names of each interface in the .d.ts files.
const dtsCache = new Map();

function resolveDtsImport(fromFile, spec) {
  if (spec.startsWith('.')) return path.resolve(path.dirname(fromFile), `${spec}.d.ts`);
  if (spec.startsWith('@kubernetes-models/apimachinery/')) {
    return path.join(APIMACHINERY_DIR, `${spec.slice('@kubernetes-models/apimachinery/'.length)}.d.ts`);
  }
  return null;
}

function parseDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let info = null;
  if (file && fs.existsSync(file)) {
    const src = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    const imports = new Map();
    for (const m of src.matchAll(/import \{([^}]*)\} from "([^"]+)";/g)) {
      const target = resolveDtsImport(file, m[2]);
      for (const part of m[1].split(',')) {
        const names = part.trim().split(/\s+as\s+/);
        const local = names[names.length - 1];
        if (local && target) imports.set(local, target);
      }
    }
    const im = /export interface (\w+)(?:\s+extends[^{]*)?\s*\{/.exec(src);
    if (im) {
      let i = im.index + im[0].length;
      let depth = 1;
      const start = i;
      while (depth > 0 && i < src.length) {
        if (src[i] === '{') depth++;
        else if (src[i] === '}') depth--;
        i++;
      }
      const body = src.slice(start, i - 1);
      const props = new Map();
      const re = /\s*"([^"]+)"\??:\s*/y;
      let pos = 0;
      while (pos < body.length) {
        re.lastIndex = pos;
        const m = re.exec(body);
        if (!m) break;
        let j = re.lastIndex;
        let d = 0;
        while (j < body.length && !(body[j] === ';' && d === 0)) {
          if ('{<(['.includes(body[j])) d++;
          else if ('}>)]'.includes(body[j])) d--;
          j++;
        }
        props.set(m[1], body.slice(re.lastIndex, j).trim());
        pos = j + 1;
      }
      info = { props, imports };
    }
  }
  dtsCache.set(file, info);
  return info;
}

function typeNode(t, info) {
  t = t.trim();
  let m = /^Array<([\s\S]*)>$/.exec(t);
  if (m) return { kind: 'array', of: typeNode(m[1], info) };
  m = /^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/.exec(t);
  if (m) return { kind: 'map', of: typeNode(m[1], info) };
  if (/^I\w+$/.test(t) && info.imports.has(t)) return { kind: 'ref', file: info.imports.get(t) };
  return { kind: 'leaf' };
}

function strictFields(value, file, where, problems) {
  const info = parseDts(file);
  if (!info || !isObj(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!info.props.has(k)) {
      problems.add(`${where}.${k}: unknown field`);
      continue;
    }
    walkType(v, typeNode(info.props.get(k), info), `${where}.${k}`, problems);
  }
}

function walkType(v, node, where, problems) {
  if (node.kind === 'array' && Array.isArray(v)) v.forEach((x, i) => walkType(x, node.of, `${where}[${i}]`, problems));
  else if (node.kind === 'map' && isObj(v)) for (const [k, x] of Object.entries(v)) walkType(x, node.of, `${where}.${k}`, problems);
  else if (node.kind === 'ref') strictFields(v, node.file, where, problems);
}

// KEDA (keda.sh/v1alpha1): no schema package is pinned here, so these are
// written from KEDA's CRDs for the fields weft uses; unknown fields fail.
const ajv = new Ajv({ allErrors: true, strict: true });
const meta = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 253 },
    namespace: { type: 'string' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
  additionalProperties: false,
};
const KEDA_SCHEMAS = {
  ScaledObject: ajv.compile({
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    additionalProperties: false,
    properties: {
      apiVersion: { const: 'keda.sh/v1alpha1' },
      kind: { const: 'ScaledObject' },
      metadata: meta,
      spec: {
        type: 'object',
        required: ['scaleTargetRef', 'triggers'],
        additionalProperties: false,
        properties: {
          scaleTargetRef: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              name: { type: 'string' },
              envSourceContainerName: { type: 'string' },
            },
          },
          pollingInterval: { type: 'integer', minimum: 1 },
          cooldownPeriod: { type: 'integer', minimum: 0 },
          idleReplicaCount: { type: 'integer', minimum: 0 },
          minReplicaCount: { type: 'integer', minimum: 0 },
          maxReplicaCount: { type: 'integer', minimum: 1 },
          fallback: {
            type: 'object',
            required: ['failureThreshold', 'replicas'],
            additionalProperties: false,
            properties: { failureThreshold: { type: 'integer' }, replicas: { type: 'integer' } },
          },
          advanced: {
            type: 'object',
            additionalProperties: false,
            properties: {
              restoreToOriginalReplicaCount: { type: 'boolean' },
              horizontalPodAutoscalerConfig: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  name: { type: 'string' },
                  // autoscaling/v2 behavior: checked below with
                  // kubernetes-models' HPA schema.
                  behavior: { type: 'object' },
                },
              },
            },
          },
          triggers: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              required: ['type', 'metadata'],
              additionalProperties: false,
              properties: {
                type: { type: 'string' },
                name: { type: 'string' },
                useCachedMetrics: { type: 'boolean' },
                metricType: { enum: ['AverageValue', 'Value', 'Utilization'] },
                metadata: { type: 'object', additionalProperties: { type: 'string' } },
                authenticationRef: {
                  type: 'object',
                  required: ['name'],
                  additionalProperties: false,
                  properties: { name: { type: 'string' }, kind: { enum: ['TriggerAuthentication', 'ClusterTriggerAuthentication'] } },
                },
              },
              if: { properties: { type: { const: 'redis-streams' } } },
              then: {
                properties: {
                  metadata: {
                    type: 'object',
                    required: ['stream'],
                    additionalProperties: false,
                    properties: Object.fromEntries([
                      'address', 'host', 'port', 'stream', 'consumerGroup', 'pendingEntriesCount',
                      'streamLength', 'lagCount', 'activationLagCount', 'activationStreamLength',
                      'activationPendingEntriesCount', 'databaseIndex', 'enableTLS', 'unsafeSsl',
                      'usernameFromEnv', 'passwordFromEnv', 'addressFromEnv', 'hostFromEnv', 'portFromEnv',
                    ].map((k) => [k, { type: 'string', ...(/Count$|Length$|databaseIndex|port$/.test(k) ? { pattern: '^[0-9]+$' } : {}) }])),
                  },
                },
              },
            },
          },
        },
      },
    },
  }),
  TriggerAuthentication: ajv.compile({
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    additionalProperties: false,
    properties: {
      apiVersion: { const: 'keda.sh/v1alpha1' },
      kind: { const: 'TriggerAuthentication' },
      metadata: meta,
      spec: {
        type: 'object',
        additionalProperties: false,
        properties: {
          secretTargetRef: {
            type: 'array',
            items: {
              type: 'object',
              required: ['parameter', 'name', 'key'],
              additionalProperties: false,
              properties: { parameter: { type: 'string' }, name: { type: 'string' }, key: { type: 'string' } },
            },
          },
          env: {
            type: 'array',
            items: {
              type: 'object',
              required: ['parameter', 'name'],
              additionalProperties: false,
              properties: { parameter: { type: 'string' }, name: { type: 'string' }, containerName: { type: 'string' } },
            },
          },
        },
      },
    },
  }),
};

function validateDoc(d) {
  const p = new Problems();
  if (!isObj(d) || !d.apiVersion || !d.kind) throw new Error('not a Kubernetes object (apiVersion, kind)');
  if (d.apiVersion === 'keda.sh/v1alpha1') {
    const v = KEDA_SCHEMAS[d.kind];
    if (!v) throw new Error(`no schema for ${d.apiVersion} ${d.kind}`);
    if (!v(d)) for (const e of v.errors) p.add(`${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    const behavior = d.spec && d.spec.advanced && d.spec.advanced.horizontalPodAutoscalerConfig &&
      d.spec.advanced.horizontalPodAutoscalerConfig.behavior;
    if (behavior) {
      const hpa = k8sModel('autoscaling/v2', 'HorizontalPodAutoscaler');
      const probe = {
        apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'x' },
        spec: { scaleTargetRef: { kind: 'Deployment', name: 'x' }, maxReplicas: 1, behavior },
      };
      if (!hpa.validate(probe)) for (const e of hpa.validate.errors) p.add(`behavior${e.instancePath} ${e.message || e.keyword}`);
      strictFields(probe, hpa.dts, 'hpa', p);
    }
    p.done();
    return;
  }
  const model = k8sModel(d.apiVersion, d.kind);
  if (!model) throw new Error(`kubernetes-models has no schema for ${d.apiVersion} ${d.kind}`);
  if (!model.validate(d)) {
    for (const e of model.validate.errors.slice(0, 10)) {
      p.add(`${e.instancePath || '/'} ${e.keyword} ${JSON.stringify(e.params)}`);
    }
  }
  strictFields(d, model.dts, d.kind, p);
  p.done();
}

// ---- cross-references --------------------------------------------------------

function labelSelectorMatches(sel, labels) {
  if (!sel) return false;
  labels = labels || {};
  for (const [k, v] of Object.entries(sel.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions || []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

const mapSelectorMatches = (sel, labels) => labelSelectorMatches({ matchLabels: sel }, labels);

function keysOf(obj) {
  return new Set([...Object.keys(obj.data || {}), ...Object.keys(obj.stringData || {}), ...Object.keys(obj.binaryData || {})]);
}

function decodedData(secret) {
  const out = {};
  for (const [k, v] of Object.entries(secret.data || {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(secret.stringData || {})) out[k] = v;
  return out;
}

function sleepSeconds(lifecycle) {
  const pre = lifecycle && lifecycle.preStop;
  if (!pre) return 0;
  if (pre.sleep) return pre.sleep.seconds;
  if (pre.exec && pre.exec.command && pre.exec.command[0] === 'sleep') return Number(pre.exec.command[1]);
  return 0;
}

function argValue(args, flag) {
  for (let i = 0; i < (args || []).length; i++) {
    if (args[i] === flag) return args[i + 1];
    if (args[i].startsWith(`${flag}=`)) return args[i].slice(flag.length + 1);
  }
  return undefined;
}

// Longest step timeout (seconds) of the workflows in a ConfigMap; templated
// timeouts are read from the workflow's variables.
function maxStepTimeout(configMap) {
  let max = 0;
  const visit = (steps, vars) => {
    for (const s of steps || []) {
      let t = s.timeout;
      if (typeof t === 'string') {
        const m = /^\{\{\s*variables\.(\w+)\s*\}\}$/.exec(t.trim());
        t = m ? Number(vars[m[1]]) : Number(t);
      }
      if (Number.isFinite(t)) max = Math.max(max, t);
      visit(s.then_steps, vars);
      visit(s.else_steps, vars);
      visit(s.steps, vars);
    }
  };
  for (const text of Object.values(configMap.data || {})) {
    const wf = YAML.parse(text);
    if (isObj(wf)) visit(wf.steps, wf.variables || {});
  }
  return max;
}

// Every flag and env value naming a file under a mounted ConfigMap or
// Secret must name a key that the volume really provides.
function checkMountedPaths(c, spec, byKind, where, p) {
  const candidates = [];
  for (const e of c.env || []) if (typeof e.value === 'string') candidates.push([`env ${e.name}`, e.value]);
  for (const a of [...(c.command || []), ...(c.args || [])]) candidates.push(['argument', a]);
  for (const [what, value] of candidates) {
    if (!/^\/etc\/[\w./-]+$/.test(value)) continue;
    if ((c.volumeMounts || []).some((m) => m.mountPath.replace(/\/$/, '') === value && !m.subPath)) continue; // a directory
    const mounts = (c.volumeMounts || []).filter((m) => value === m.mountPath || value.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
    if (!mounts.length) continue; // a file of the image
    const m = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const vol = (spec.volumes || []).find((v) => v.name === m.name);
    if (!vol) continue; // reported by the volume check
    const sources = [];
    if (vol.configMap) sources.push(['ConfigMap', vol.configMap.name, vol.configMap.items]);
    if (vol.secret) sources.push(['Secret', vol.secret.secretName, vol.secret.items]);
    for (const s of (vol.projected && vol.projected.sources) || []) {
      if (s.configMap) sources.push(['ConfigMap', s.configMap.name, s.configMap.items]);
      if (s.secret) sources.push(['Secret', s.secret.name, s.secret.items]);
    }
    if (!sources.length) continue;
    let rel;
    if (m.subPath) {
      if (value !== m.mountPath) { p.add(`${where}: ${what} ${value} is below a subPath file mount`); continue; }
      rel = m.subPath;
    } else {
      rel = value.slice(m.mountPath.replace(/\/$/, '').length + 1);
    }
    const provided = new Set();
    for (const [kind, name, items] of sources) {
      const obj = byKind(kind, name);
      if (!obj) continue;
      if (items) for (const it of items) provided.add(it.path);
      else for (const k of keysOf(obj)) provided.add(k);
    }
    p.expect(provided.has(rel), `${where}: ${what} ${value}: volume '${m.name}' provides no '${rel}' (has: ${[...provided].join(', ')})`);
  }
}

function crossReferences(setName, docs, opts = {}) {
  const byKindName = (kind, name) => docs.find((d) => d.kind === kind && d.metadata.name === name);
  const workloads = docs.filter((d) => podSpecOf(d));
  const prefix = `refs ${setName}`;

  check(`${prefix}: object names are unique`, () => {
    const p = new Problems();
    const seen = new Set();
    for (const d of docs) {
      const k = resKey(d);
      p.expect(!seen.has(k), `duplicate ${k}`);
      seen.add(k);
    }
    p.done();
  });

  for (const w of workloads) {
    const spec = podSpecOf(w);
    const wname = resName(w);
    check(`${prefix}: ${wname} selector matches its pod labels`, () => {
      if (w.kind === 'Pod') return;
      if (!labelSelectorMatches(w.spec.selector, w.spec.template.metadata.labels)) {
        throw new Error(`selector ${JSON.stringify(w.spec.selector)} does not match ${JSON.stringify(w.spec.template.metadata.labels)}`);
      }
    });
    check(`${prefix}: ${wname} ConfigMaps, Secrets and keys exist`, () => {
      const p = new Problems();
      eachPodRef(spec, (kind, holder, field) => {
        const obj = byKindName(kind, holder[field]);
        if (!obj) { if (!holder.optional) p.add(`${kind} '${holder[field]}' does not exist`); return; }
        const keys = keysOf(obj);
        for (const it of holder.items || []) p.expect(keys.has(it.key), `${kind} '${holder[field]}' has no key '${it.key}'`);
        if (holder.key !== undefined) p.expect(keys.has(holder.key), `${kind} '${holder[field]}' has no key '${holder.key}'`);
      });
      if (spec.serviceAccountName) {
        p.expect(byKindName('ServiceAccount', spec.serviceAccountName), `ServiceAccount '${spec.serviceAccountName}' does not exist`);
      }
      p.done();
    });
    check(`${prefix}: ${wname} volumes, mounts and mounted files`, () => {
      const p = new Problems();
      const vols = new Set((spec.volumes || []).map((v) => v.name));
      const claims = new Set(((w.spec && w.spec.volumeClaimTemplates) || []).map((v) => v.metadata.name));
      const used = new Set();
      for (const c of containersOf(spec)) {
        for (const m of c.volumeMounts || []) {
          p.expect(vols.has(m.name) || claims.has(m.name), `${c.name}: mount '${m.name}' has no volume`);
          used.add(m.name);
          if (m.subPath) {
            const v = (spec.volumes || []).find((x) => x.name === m.name);
            const src = v && (v.configMap ? byKindName('ConfigMap', v.configMap.name) : v.secret ? byKindName('Secret', v.secret.secretName) : null);
            if (src) p.expect(keysOf(src).has(m.subPath), `${c.name}: subPath '${m.subPath}' is not a key of ${resName(src)}`);
          }
        }
        checkMountedPaths(c, spec, byKindName, c.name, p);
      }
      for (const v of vols) p.expect(used.has(v), `volume '${v}' is mounted nowhere`);
      for (const v of claims) p.expect(used.has(v), `volumeClaimTemplate '${v}' is mounted nowhere`);
      p.done();
    });
    check(`${prefix}: ${wname} probe ports are declared container ports`, () => {
      const p = new Problems();
      for (const c of containersOf(spec)) {
        const ports = c.ports || [];
        for (const probeName of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
          const pr = c[probeName];
          if (!pr) continue;
          const act = pr.httpGet || pr.tcpSocket || pr.grpc;
          if (!act) continue;
          const port = act.port;
          const ok = typeof port === 'string' ? ports.some((x) => x.name === port) : ports.some((x) => x.containerPort === port);
          p.expect(ok, `${c.name}.${probeName}: port ${JSON.stringify(port)} is not a port of the container`);
        }
      }
      p.done();
    });
    check(`${prefix}: ${wname} runs non-root, read-only, without capabilities`, () => {
      const p = new Problems();
      const psc = spec.securityContext || {};
      p.expect(psc.runAsNonRoot === true, 'pod securityContext.runAsNonRoot is not true');
      p.expect(Number.isInteger(psc.runAsUser) && psc.runAsUser > 0, 'pod securityContext.runAsUser is not a non-zero uid');
      p.expect(spec.automountServiceAccountToken === false, 'automountServiceAccountToken is not false');
      for (const c of containersOf(spec)) {
        const sc = c.securityContext || {};
        p.expect(sc.readOnlyRootFilesystem === true, `${c.name}: readOnlyRootFilesystem is not true`);
        p.expect(sc.allowPrivilegeEscalation === false, `${c.name}: allowPrivilegeEscalation is not false`);
        p.expect(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'), `${c.name}: capabilities do not drop ALL`);
        p.expect(sc.privileged !== true, `${c.name}: privileged`);
        const r = c.resources || {};
        for (const what of ['cpu', 'memory']) p.expect(r.requests && r.requests[what] !== undefined, `${c.name}: no ${what} request`);
        p.expect(r.limits && r.limits.memory !== undefined, `${c.name}: no memory limit`);
      }
      p.done();
    });
  }

  for (const s of docs.filter((d) => d.kind === 'Service')) {
    check(`${prefix}: Service/${s.metadata.name} selects pods and their ports`, () => {
      const p = new Problems();
      const targets = workloads.filter((w) => mapSelectorMatches(s.spec.selector, w.spec.template.metadata.labels));
      p.expect(targets.length > 0, `selector ${JSON.stringify(s.spec.selector)} matches no workload`);
      for (const port of s.spec.ports || []) {
        const tp = port.targetPort === undefined ? port.port : port.targetPort;
        for (const t of targets) {
          const cports = containersOf(podSpecOf(t)).flatMap((c) => c.ports || []);
          const ok = typeof tp === 'string' ? cports.some((x) => x.name === tp) : cports.some((x) => x.containerPort === tp);
          p.expect(ok, `port ${port.name || port.port}: target ${tp} is not a container port of ${resName(t)}`);
        }
      }
      p.done();
    });
  }

  for (const sts of docs.filter((d) => d.kind === 'StatefulSet')) {
    check(`${prefix}: StatefulSet/${sts.metadata.name} has its headless governing Service`, () => {
      const svc = byKindName('Service', sts.spec.serviceName);
      if (!svc) throw new Error(`Service '${sts.spec.serviceName}' does not exist`);
      if (svc.spec.clusterIP !== 'None') throw new Error(`Service '${sts.spec.serviceName}' is not headless`);
      if (!mapSelectorMatches(svc.spec.selector, sts.spec.template.metadata.labels)) throw new Error('its selector does not match the pods');
    });
  }

  for (const pdb of docs.filter((d) => d.kind === 'PodDisruptionBudget')) {
    check(`${prefix}: PodDisruptionBudget/${pdb.metadata.name} selects its pods and allows a disruption`, () => {
      const p = new Problems();
      const targets = workloads.filter((w) => labelSelectorMatches(pdb.spec.selector, w.spec.template.metadata.labels));
      p.expect(targets.length === 1, `selects ${targets.length} workloads (${targets.map(resName).join(', ')}), expected one`);
      p.expect(targets.every((t) => t.metadata.name === pdb.metadata.name), `budget '${pdb.metadata.name}' selects ${targets.map(resName).join(', ')}`);
      for (const t of targets) {
        const replicas = t.spec.replicas;
        if (typeof pdb.spec.minAvailable === 'number' && typeof replicas === 'number') {
          p.expect(replicas > pdb.spec.minAvailable, `${resName(t)} has ${replicas} replicas: minAvailable ${pdb.spec.minAvailable} would block every drain`);
        }
      }
      p.done();
    });
  }
  check(`${prefix}: the scheduler has a PodDisruptionBudget when it runs more than one replica`, () => {
    const sched = byKindName('Deployment', 'weft-scheduler');
    if (!sched) throw new Error('no weft-scheduler Deployment');
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget' && labelSelectorMatches(d.spec.selector, sched.spec.template.metadata.labels));
    if ((sched.spec.replicas || 1) > 1 && !pdb) throw new Error('no PodDisruptionBudget selects the scheduler pods');
    if ((sched.spec.replicas || 1) === 1 && pdb) throw new Error('one scheduler replica with a PodDisruptionBudget blocks node drains');
  });

  for (const np of docs.filter((d) => d.kind === 'NetworkPolicy')) {
    check(`${prefix}: NetworkPolicy/${np.metadata.name} selects weft pods and their ports`, () => {
      const p = new Problems();
      const selected = workloads.filter((w) => labelSelectorMatches(np.spec.podSelector, w.spec.template.metadata.labels));
      const optionalComponents = new Set(['toolbox']);
      const sel = np.spec.podSelector || {};
      const wanted = (sel.matchExpressions || []).find((e) => e.key === 'app.kubernetes.io/component');
      if (wanted) {
        for (const comp of wanted.values) {
          if (optionalComponents.has(comp)) continue;
          p.expect(selected.some((w) => w.spec.template.metadata.labels['app.kubernetes.io/component'] === comp),
            `component '${comp}' is selected but no workload has it`);
        }
      }
      p.expect(selected.length > 0, 'selects no workload');
      for (const rule of np.spec.ingress || []) {
        for (const port of rule.ports || []) {
          const ok = selected.some((w) => containersOf(podSpecOf(w)).some((c) => (c.ports || []).some((x) => x.containerPort === port.port || x.name === port.port)));
          p.expect(ok, `ingress port ${port.port} is a container port of none of the selected pods`);
        }
      }
      for (const rule of np.spec.egress || []) {
        for (const peer of rule.to || []) {
          if (!peer.podSelector || peer.namespaceSelector) continue;
          const peers = workloads.filter((w) => labelSelectorMatches(peer.podSelector, w.spec.template.metadata.labels));
          p.expect(peers.length > 0, `egress peer ${JSON.stringify(peer.podSelector)} matches no workload`);
          for (const port of rule.ports || []) {
            p.expect(peers.some((w) => containersOf(podSpecOf(w)).some((c) => (c.ports || []).some((x) => x.containerPort === port.port))),
              `egress port ${port.port} is not a port of the peer pods`);
          }
        }
      }
      p.done();
    });
  }
  check(`${prefix}: NetworkPolicies deny by default and open the flows weft needs`, () => {
    const p = new Problems();
    const nps = docs.filter((d) => d.kind === 'NetworkPolicy');
    const allows = (from, to, port) => nps.some((np) => labelSelectorMatches(np.spec.podSelector, to) &&
      (np.spec.ingress || []).some((r) => (r.ports || []).some((x) => x.port === port) &&
        (r.from || []).some((f) => f.podSelector && !f.namespaceSelector && labelSelectorMatches(f.podSelector, from))));
    const egress = (from, to, port) => nps.some((np) => labelSelectorMatches(np.spec.podSelector, from) &&
      (np.spec.egress || []).some((r) => (r.ports || []).some((x) => x.port === port) &&
        (r.to || []).some((t) => (t.podSelector && !t.namespaceSelector && labelSelectorMatches(t.podSelector, to)) ||
          (t.ipBlock && !to))));
    const labels = (n, k = 'Deployment') => { const w = byKindName(k, n); return w && w.spec.template.metadata.labels; };
    const redis = labels('weft-redis', 'StatefulSet');
    const deny = nps.find((np) => !np.spec.ingress && !np.spec.egress && (np.spec.policyTypes || []).length === 2);
    p.expect(deny, 'no default-deny policy (Ingress and Egress, no rules)');
    for (const w of workloads) {
      p.expect(!deny || labelSelectorMatches(deny.spec.podSelector, w.spec.template.metadata.labels), `${resName(w)} is not under the default deny`);
      const l = w.spec.template.metadata.labels;
      const dns = nps.some((np) => labelSelectorMatches(np.spec.podSelector, l) &&
        (np.spec.egress || []).some((r) => (r.ports || []).some((x) => x.port === 53 && x.protocol === 'UDP')));
      p.expect(dns, `${resName(w)} cannot resolve names (no DNS egress)`);
    }
    for (const n of ['weft-scheduler', 'weft-worker']) {
      const l = labels(n);
      p.expect(allows(l, redis, 6379), `Redis ingress does not admit ${n}`);
      p.expect(egress(l, redis, 6379), `${n} has no egress to Redis:6379`);
    }
    const worker = labels('weft-worker');
    p.expect(egress(worker, null, 443) && egress(worker, null, 22), 'workers have no egress to 443 and 22 (git, LLM APIs)');
    p.expect(!egress(labels('weft-scheduler'), null, 443), 'the scheduler should not reach the internet');
    p.done();
  });

  const scalers = docs.filter((d) => d.kind === 'ScaledObject' || d.kind === 'HorizontalPodAutoscaler');
  for (const s of scalers) {
    check(`${prefix}: ${resName(s)} scales an existing Deployment that leaves replicas to it`, () => {
      const p = new Problems();
      const ref = s.spec.scaleTargetRef;
      const target = byKindName(ref.kind || 'Deployment', ref.name);
      p.expect(target, `scale target ${ref.kind || 'Deployment'}/${ref.name} does not exist`);
      if (target && opts.scalerOwnsReplicas) p.expect(target.spec.replicas === undefined, `${resName(target)} sets replicas, which kubectl apply would reset`);
      if (s.kind === 'ScaledObject') {
        for (const t of s.spec.triggers) {
          if (t.authenticationRef) {
            const ta = byKindName('TriggerAuthentication', t.authenticationRef.name);
            p.expect(ta, `TriggerAuthentication '${t.authenticationRef.name}' does not exist`);
            for (const r of (ta && ta.spec.secretTargetRef) || []) {
              const sec = byKindName('Secret', r.name);
              p.expect(sec && keysOf(sec).has(r.key), `Secret '${r.name}' with key '${r.key}' does not exist`);
            }
          }
          if (t.type === 'redis-streams') {
            const m = t.metadata;
            p.expect(/^weft:q:[^:]+$/.test(m.stream), `stream '${m.stream}' is not a job queue weft:q:<queue>`);
            p.expect(m.consumerGroup === 'workers', `consumerGroup is '${m.consumerGroup}', workers read as 'workers'`);
            p.expect(['lagCount', 'pendingEntriesCount', 'streamLength'].filter((k) => k in m).length === 1, 'give exactly one of lagCount, pendingEntriesCount, streamLength per trigger');
            const addr = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?:(\d+)$/.exec(m.address || '');
            p.expect(addr, `address '${m.address}' is not <service>.<namespace>.svc[.cluster.local]:<port> (KEDA connects from its own namespace)`);
            if (addr) {
              const svc = byKindName('Service', addr[1]);
              p.expect(svc && svc.spec.ports.some((x) => x.port === Number(addr[4])), `Service ${addr[1]}:${addr[4]} does not exist`);
              if (s.metadata.namespace) p.expect(addr[2] === s.metadata.namespace, `address names namespace '${addr[2]}' but weft runs in '${s.metadata.namespace}'`);
            }
          }
        }
        const queues = new Set();
        for (const t of s.spec.triggers) if (t.type === 'redis-streams') queues.add(t.metadata.stream.slice('weft:q:'.length));
        const w = target && containersOf(podSpecOf(target)).find((c) => c.name === 'worker');
        const served = w && ((w.env || []).find((e) => e.name === 'WEFT_QUEUES') || {}).value;
        for (const q of queues) p.expect(served && served.split(',').includes(q), `queue '${q}' is not served by the worker (WEFT_QUEUES)`);
      }
      p.done();
    });
  }

  check(`${prefix}: worker drain fits terminationGracePeriodSeconds and the longest step`, () => {
    const w = byKindName('Deployment', 'weft-worker');
    if (!w) throw new Error('no weft-worker Deployment');
    const spec = podSpecOf(w);
    const c = spec.containers.find((x) => x.name === 'worker');
    const grace = Number(argValue(c.args, '--grace') || 30000) / 1000;
    const pre = sleepSeconds(c.lifecycle);
    const tgps = spec.terminationGracePeriodSeconds === undefined ? 30 : spec.terminationGracePeriodSeconds;
    const p = new Problems();
    p.expect(pre > 0, 'no preStop pause');
    p.expect(tgps >= pre + grace + 2, `terminationGracePeriodSeconds ${tgps} < preStop ${pre} + --grace ${grace} + 2`);
    if (!opts.shortSteps) {
      const wf = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('weft-workflows'));
      const longest = wf ? maxStepTimeout(wf) : 0;
      p.expect(grace >= longest, `--grace ${grace}s is shorter than the longest step timeout ${longest}s`);
    }
    p.done();
  });

  check(`${prefix}: every weft container runs the same image`, () => {
    const imgs = new Set();
    for (const w of workloads) for (const c of containersOf(podSpecOf(w))) if (/weft/.test(splitImage(c.image).name)) imgs.add(c.image);
    if (imgs.size !== 1) throw new Error(`images: ${[...imgs].join(', ')}`);
  });
}

// Secrets: the REDIS_URLs, the KEDA credentials and the ACL file agree.
function parseAcl(text) {
  const users = new Map();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'user') throw new Error(`ACL line does not start with 'user': ${line}`);
    users.set(w[1], w.slice(2));
  }
  return users;
}

function aclAccepts(rules, password) {
  if (rules.includes('nopass')) return true;
  const hash = crypto.createHash('sha256').update(password).digest('hex');
  return rules.some((r) => r === `>${password}` || r === `#${hash}`);
}

function checkSecrets(setName, docs) {
  const sec = (n) => docs.find((d) => d.kind === 'Secret' && d.metadata.name === n);
  check(`secrets ${setName}: REDIS_URLs and KEDA credentials match the ACL users`, () => {
    const p = new Problems();
    const acl = sec('weft-redis-acl');
    if (!acl) throw new Error('no weft-redis-acl Secret');
    const users = parseAcl(decodedData(acl)['users.acl']);
    const def = users.get('default');
    p.expect(def && def.includes('-@all') && !def.some((r) => r.startsWith('~') || r.startsWith('%')) &&
      def.filter((r) => r.startsWith('+')).join(' ') === '+ping', 'the default user must be limited to PING');
    const urls = {
      'weft-scheduler-redis': 'weft-scheduler', 'weft-worker-redis': 'weft-worker',
      'weft-operator-redis': 'weft-operator', 'weft-admin-redis': 'weft-admin',
    };
    for (const [name, user] of Object.entries(urls)) {
      const s = sec(name);
      if (!s) { p.add(`Secret ${name} missing`); continue; }
      const url = decodedData(s).REDIS_URL;
      const m = /^redis:\/\/([^:@/]+):([^@/]+)@([a-z0-9.-]+):(\d+)(\/\d+)?$/.exec(url || '');
      if (!m) { p.add(`${name}: REDIS_URL '${url}' is not redis://user:password@host:port`); continue; }
      p.expect(m[1] === user, `${name}: REDIS_URL logs in as '${m[1]}', expected '${user}'`);
      p.expect(users.has(m[1]) && aclAccepts(users.get(m[1]), m[2]), `${name}: the ACL does not accept ${m[1]}'s password`);
      p.expect(m[3].split('.')[0] === 'weft-redis' && m[4] === '6379', `${name}: REDIS_URL does not point at weft-redis:6379`);
      if ('REDISCLI_AUTH' in decodedData(s)) p.expect(decodedData(s).REDISCLI_AUTH === m[2], `${name}: REDISCLI_AUTH differs from the URL's password`);
    }
    const keda = sec('weft-keda-redis');
    if (!keda) p.add('Secret weft-keda-redis missing');
    else {
      const d = decodedData(keda);
      p.expect(users.has(d.username) && aclAccepts(users.get(d.username), d.password), 'weft-keda-redis: the ACL does not accept its username/password');
    }
    const hmac = sec('weft-hmac');
    if (!hmac) p.add('Secret weft-hmac missing');
    else {
      const k = decodedData(hmac)['hmac.key'].replace(/\r?\n$/, '');
      p.expect(k.length >= 16 && k.length <= 512, `weft-hmac: key of ${k.length} bytes, weft takes 16 to 512`);
    }
    p.done();
  });
}

// ---- Redis: the config and ACL in a real server ----------------------------

// Starts redis-server on a Unix socket only (no TCP port) with the given
// redis.conf and ACL file; waits until it answers PING.
function startRedis(conf, aclText) {
  const server = which('redis-server');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-deploy-redis-'));
  const sock = path.join(dir, 'redis.sock');
  const log = path.join(dir, 'redis.log');
  fs.writeFileSync(path.join(dir, 'redis.conf'), conf);
  fs.writeFileSync(path.join(dir, 'users.acl'), aclText);
  const child = cp.spawn(server, [
    path.join(dir, 'redis.conf'), '--port', '0', '--unixsocket', sock, '--unixsocketperm', '700',
    '--dir', dir, '--aclfile', path.join(dir, 'users.acl'), '--maxmemory', '64mb', '--logfile', log,
  ], { stdio: 'ignore' });
  const cli = (user, pass, args) => run('redis-cli', ['-s', sock, '--no-auth-warning', ...(user ? ['--user', user, '--pass', pass] : []), ...args]);
  let up = false;
  for (let i = 0; i < 200 && !up && child.exitCode === null; i++) {
    cp.spawnSync('sleep', ['0.05']);
    up = fs.existsSync(sock) && cli(null, null, ['PING']).stdout.trim() === 'PONG';
  }
  const stop = () => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const tail = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-6).join('\n') : '');
  return { up, cli, stop, tail };
}

function redisChecks(conf, aclText, creds) {
  if (!which('redis-server') || !which('redis-cli')) {
    check('redis: redis-server and redis-cli are installed', () => { throw new Error('install redis-server and redis-tools (scripts/install-deps.sh)'); });
    return;
  }
  const srv = startRedis(conf, aclText);
  const cliAs = srv.cli;
  const admin = creds['weft-admin'];
  try {
    check('redis: redis-server starts with redis.conf and users.acl', () => {
      if (!srv.up) throw new Error(`redis-server did not start:\n${srv.tail()}`);
    });
    if (!srv.up) return;
    check('redis: durability settings are in force (AOF everysec, noeviction)', () => {
      const p = new Problems();
      const get = (k) => cliAs('weft-admin', admin, ['CONFIG', 'GET', k]).stdout.trim().split('\n')[1];
      p.expect(get('appendonly') === 'yes', 'appendonly is not yes');
      p.expect(get('appendfsync') === 'everysec', 'appendfsync is not everysec');
      p.expect(get('maxmemory-policy') === 'noeviction', 'maxmemory-policy is not noeviction');
      p.done();
    });
    check('redis: every user logs in with its secret password; unauthenticated clients may only PING', () => {
      const p = new Problems();
      for (const [user, pass] of Object.entries(creds)) {
        const r = cliAs(null, null, ['AUTH', user, pass]);
        p.expect(r.stdout.trim() === 'OK', `${user}: ${r.stdout.trim()} ${r.stderr.trim()}`);
        const bad = cliAs(null, null, ['AUTH', user, `${pass}x`]);
        p.expect(bad.stdout.trim() !== 'OK', `${user}: a wrong password is accepted`);
      }
      const anon = cliAs(null, null, ['GET', 'weft:def:x']).stdout;
      p.expect(/NOPERM/.test(anon), `unauthenticated GET is not refused: ${anon.trim()}`);
      p.done();
    });
    const dry = (user, args) => {
      const r = cliAs('weft-admin', admin, ['ACL', 'DRYRUN', user, ...args]);
      return r.stdout.trim();
    };
    const X = ['*', 'f', 'v'];
    // What each user needs (docs/protocol.md, the C sources), and what it
    // must be refused. Keys use the default prefix.
    const matrix = {
      'weft-scheduler': {
        allow: [
          ['PING'], ['SELECT', '0'], ['CLIENT', 'SETNAME', 'sched'],
          ['XREADGROUP', 'GROUP', 'schedulers', 'c', 'COUNT', '10', 'STREAMS', 'weft:tasks', 'weft:events', '>', '>'],
          ['XACK', 'weft:events', 'schedulers', '0-1'], ['XDEL', 'weft:tasks', '0-1'],
          ['XADD', 'weft:q:default', ...X], ['XADD', 'weft:events', ...X], ['XADD', 'weft:dlq', ...X],
          ['XAUTOCLAIM', 'weft:events', 'schedulers', 'c', '30000', '0-0'], ['XCLAIM', 'weft:events', 'schedulers', 'c', '0', '0-1'],
          ['XGROUP', 'CREATE', 'weft:tasks', 'schedulers', '0', 'MKSTREAM'],
          ['XINFO', 'GROUPS', 'weft:q:default'], ['XINFO', 'STREAM', 'weft:q:default'], ['XPENDING', 'weft:q:default', 'workers'],
          ['XTRIM', 'weft:events', 'MINID', '0-1'], ['XLEN', 'weft:dlq'], ['XRANGE', 'weft:dlq', '-', '+'],
          ['FCALL', 'weft_0123456789abcdef_finish', '2', 'weft:events', 'weft:run:r1'], ['FUNCTION', 'LOAD', '#!lua name=x'],
          ['EVALSHA', '0123456789012345678901234567890123456789', '2', 'weft:events', 'weft:run:r1'], ['EVAL', 'return 1', '0'],
          ['SCRIPT', 'LOAD', 'return 1'],
          ['HGET', 'weft:run:r1', 'status'], ['HMGET', 'weft:run:r1:steps', 'a'], ['HGETALL', 'weft:breaker:p'], ['HSET', 'weft:run:r1', 'a', 'b'],
          ['GET', 'weft:def:abc'], ['SET', 'weft:def:abc', 'x', 'NX'],
          ['ZRANGEBYSCORE', 'weft:delayed', '-inf', '0'], ['ZADD', 'weft:deadlines', '1', 'm'], ['ZREM', 'weft:deadlines', 'm'],
          ['HDEL', 'weft:breaker:p', 'probe'], ['HDEL', 'weft:run:r1:steps', 'a:waiting'], ['ZRANGE', 'weft:breakerwait:p', '0', '-1'],
          ['ZREMRANGEBYSCORE', 'weft:breakerwait:p', '-inf', '+inf'], ['ZADD', 'weft:delayed', 'XX', 'LT', '1', 'm'],
          ['ZREVRANGE', 'weft:runs', '0', '10'], ['ZCARD', 'weft:runs'],
          ['PUBLISH', 'weft:cancel', 'r|s|1'], ['MULTI'], ['EXEC'],
        ],
        deny: [
          ['GET', 'other:key'], ['XADD', 'jobs', ...X], ['PUBLISH', 'other', 'x'], ['FLUSHALL'], ['KEYS', '*'],
          ['CONFIG', 'SET', 'appendonly', 'no'], ['SHUTDOWN'], ['DEBUG', 'SLEEP', '0'], ['SUBSCRIBE', 'weft:cancel'],
          ['DEL', 'weft:runs'], ['MONITOR'], ['ACL', 'LIST'], ['FUNCTION', 'FLUSH'], ['FUNCTION', 'DELETE', 'x'],
        ],
      },
      'weft-worker': {
        allow: [
          ['PING'], ['SELECT', '0'], ['CLIENT', 'SETNAME', 'w'],
          ['XREADGROUP', 'GROUP', 'workers', 'w', 'BLOCK', '1000', 'STREAMS', 'weft:q:default', 'weft:q:git', '>', '>'],
          ['XAUTOCLAIM', 'weft:q:default', 'workers', 'w', '30000', '0-0'], ['XCLAIM', 'weft:q:default', 'workers', 'w', '0', '0-1', 'JUSTID'],
          ['XPENDING', 'weft:q:default', 'workers', '-', '+', '10', 'w'], ['XGROUP', 'CREATE', 'weft:q:default', 'workers', '0', 'MKSTREAM'],
          ['MULTI'], ['XADD', 'weft:events', ...X], ['XACK', 'weft:q:default', 'workers', '0-1'], ['XDEL', 'weft:q:default', '0-1'], ['EXEC'],
          ['XADD', 'weft:dlq', ...X],
          ['FCALL', 'weft_0123456789abcdef_start', '10', 'weft:events', 'weft:runs', 'weft:delayed', 'weft:deadlines',
            'weft:stats', 'weft:run:r1', 'weft:run:r1:steps', 'weft:run:r1:deps', 'weft:run:r1:state', 'weft:run:r1:history'],
          ['HMGET', 'weft:run:r1:steps', 'a', 'a:attempt'], ['HGETALL', 'weft:run:r1:steps'], ['HSET', 'weft:run:r1:steps', 'a', 'running'],
          ['ZADD', 'weft:deadlines', '1', 'r|s|1'], ['ZREM', 'weft:deadlines', 'r|s|1|queue'],
          ['XADD', 'weft:run:r1:history', 'MAXLEN', '~', '1000', ...X],
          ['SUBSCRIBE', 'weft:cancel'],
        ],
        deny: [
          // Not refused: reading weft:events. Every transition declares
          // it, and FCALL needs read and write on declared keys. Refused:
          // loading code. A library loaded with REPLACE would run in the
          // schedulers' calls, with their rights.
          ['XADD', 'weft:tasks', ...X], ['XREADGROUP', 'GROUP', 'schedulers', 'w', 'STREAMS', 'weft:tasks', '>'],
          ['GET', 'weft:def:abc'], ['SET', 'weft:def:abc', 'x'], ['HSET', 'weft:breaker:p', 'state', 'closed'],
          ['PUBLISH', 'weft:cancel', 'x'], ['EVAL', 'return 1', '0'], ['DEL', 'weft:run:r1'], ['FLUSHALL'], ['KEYS', '*'],
          ['HDEL', 'weft:breaker:p', 'state'], ['ZREM', 'weft:breakerwait:p', 'm'],
          ['CONFIG', 'GET', '*'], ['SUBSCRIBE', 'other'], ['EVALSHA', '0123456789012345678901234567890123456789', '1', 'weft:tasks'],
          ['FCALL', 'weft_0123456789abcdef_finish', '1', 'weft:tasks'], ['FUNCTION', 'LOAD', '#!lua name=x'],
          ['SCRIPT', 'LOAD', 'return 1'], ['FUNCTION', 'FLUSH'],
        ],
      },
      'weft-keda': {
        allow: [['PING'], ['XINFO', 'GROUPS', 'weft:q:default'], ['XPENDING', 'weft:q:default', 'workers'], ['XLEN', 'weft:q:git']],
        deny: [['XADD', 'weft:q:default', ...X], ['XINFO', 'GROUPS', 'weft:events'], ['XRANGE', 'weft:q:default', '-', '+'],
          ['HGETALL', 'weft:run:r1'], ['XACK', 'weft:q:default', 'workers', '0-1']],
      },
      'weft-operator': {
        allow: [['XINFO', 'GROUPS', 'weft:q:default'], ['XPENDING', 'weft:q:default', 'workers', '-', '+', '10'],
          ['XRANGE', 'weft:run:r1:history', '-', '+'], ['HGETALL', 'weft:run:r1:steps'], ['XRANGE', 'weft:dlq', '-', '+'],
          ['XADD', 'weft:tasks', ...X], ['XADD', 'weft:q:default', ...X], ['XDEL', 'weft:dlq', '0-1'], ['SET', 'weft:def:abc', 'x', 'NX'],
          ['ZREVRANGE', 'weft:runs', '0', '10'], ['XREAD', 'COUNT', '10', 'STREAMS', 'weft:run:r1:history', '0'], ['INFO', 'persistence']],
        deny: [['GET', 'other'], ['FLUSHALL'], ['FLUSHDB'], ['KEYS', '*'], ['CONFIG', 'SET', 'save', ''], ['SHUTDOWN'], ['ACL', 'SETUSER', 'x'],
          ['DEBUG', 'SLEEP', '0'], ['MONITOR']],
      },
    };
    for (const [user, m] of Object.entries(matrix)) {
      check(`redis: ACL DRYRUN ${user}: ${m.allow.length} needed commands allowed, ${m.deny.length} refused`, () => {
        const p = new Problems();
        for (const a of m.allow) { const r = dry(user, a); p.expect(r === 'OK', `needs ${a.join(' ')}: ${r}`); }
        for (const a of m.deny) { const r = dry(user, a); p.expect(r !== 'OK', `must not: ${a.join(' ')}`); }
        p.done();
      });
    }

    // Redis checks each call inside a script against the caller's ACL, so
    // every command the transitions call must be allowed: all of them for
    // the scheduler, the worker's `start` (and the helpers it calls).
    const luaDir = path.join(ROOT, 'common', 'lua');
    const luaCmds = (file) => {
      const src = fs.readFileSync(file, 'utf8');
      const cmds = new Set();
      // A literal subcommand is kept: XINFO GROUPS, SCRIPT LOAD, ...
      for (const mm of src.matchAll(/redis\.p?call\(\s*['"]([A-Za-z]+)['"](?:\s*,\s*['"]([A-Za-z]+)['"])?/g)) {
        const cmd = mm[1].toUpperCase();
        const sub = mm[2] && ['XINFO', 'XGROUP', 'SCRIPT', 'CLIENT', 'OBJECT', 'MEMORY'].includes(cmd) ? ` ${mm[2].toUpperCase()}` : '';
        cmds.add(cmd + sub);
      }
      for (const mm of src.matchAll(/\{\s*['"]([A-Z]+)['"]\s*,\s*K_/g)) cmds.add(mm[1]);
      return cmds;
    };
    const sample = {
      XADD: ['weft:run:r1:history', '*', 'f', 'v'], XACK: ['weft:events', 'schedulers', '0-1'], XDEL: ['weft:events', '0-1'],
      XTRIM: ['weft:events', 'MINID', '0-1'], XLEN: ['weft:events'], XRANGE: ['weft:events', '-', '+'],
      'XINFO GROUPS': ['weft:events'], 'XINFO STREAM': ['weft:events'], 'XINFO CONSUMERS': ['weft:events', 'schedulers'],
      XPENDING: ['weft:events', 'schedulers'], XAUTOCLAIM: ['weft:events', 'schedulers', 'c', '0', '0-0'],
      PUBLISH: ['weft:cancel', 'x'], ZADD: ['weft:deadlines', '1', 'm'], ZREM: ['weft:deadlines', 'm'],
      ZRANGEBYSCORE: ['weft:delayed', '-inf', '0'], ZRANGE: ['weft:runs', '0', '1'], ZSCORE: ['weft:runs', 'm'], ZCARD: ['weft:runs'],
      HINCRBY: ['weft:run:r1:deps', 'a', '1'], HSET: ['weft:run:r1:steps', 'a', 'b'], HGET: ['weft:run:r1:steps', 'a'],
      HMGET: ['weft:run:r1:steps', 'a'], HGETALL: ['weft:run:r1:steps'], HEXISTS: ['weft:run:r1:steps', 'a'], HDEL: ['weft:run:r1:steps', 'a'],
      EXISTS: ['weft:run:r1'], EXPIRE: ['weft:run:r1', '10'], DEL: ['weft:run:r1'], UNLINK: ['weft:run:r1'], GET: ['weft:def:x'],
      SET: ['weft:def:x', 'y'], SADD: ['weft:run:r1:x', 'm'], SREM: ['weft:run:r1:x', 'm'], ZREMRANGEBYSCORE: ['weft:runs', '0', '1'],
    };
    const luaFiles = fs.existsSync(luaDir) ? fs.readdirSync(luaDir).filter((f) => f.endsWith('.lua')) : [];
    check(`redis: weft-scheduler may run every command of the ${luaFiles.length} Lua transition scripts`, () => {
      const p = new Problems();
      for (const f of luaFiles) {
        for (const cmd of luaCmds(path.join(luaDir, f))) {
          const r = dry('weft-scheduler', [...cmd.split(' '), ...(sample[cmd] || ['weft:x'])]);
          p.expect(r === 'OK', `${f} calls ${cmd}: ${r} (add +${cmd.toLowerCase().replace(' ', '|')} to weft-scheduler in deploy/k8s/secrets/users.acl.in)`);
        }
      }
      p.done();
    });
    check('redis: weft-worker may run every command of the start transition', () => {
      const p = new Problems();
      const f = path.join(luaDir, 'start.lua');
      if (!fs.existsSync(f)) return { skip: 'common/lua/start.lua not found' };
      // start.lua's own calls, and hist()'s XADD to the run history.
      const cmds = luaCmds(f);
      cmds.add('XADD');
      for (const cmd of cmds) {
        const r = dry('weft-worker', [...cmd.split(' '), ...(sample[cmd] || ['weft:run:r1'])]);
        p.expect(r === 'OK', `start.lua calls ${cmd}: ${r} (add +${cmd.toLowerCase().replace(' ', '|')} to weft-worker in deploy/k8s/secrets/users.acl.in)`);
      }
      p.done();
    });
  } finally {
    srv.stop();
  }
}

// ---- the Dockerfile ----------------------------------------------------------

function dockerfileChecks() {
  const file = path.join(DEPLOY, 'Dockerfile');
  const text = fs.readFileSync(file, 'utf8');
  check('dockerfile: dockerfilelint finds no issue', () => {
    const lint = require('dockerfilelint');
    const issues = lint.run(DEPLOY, text);
    if (issues.length) throw new Error(issues.map((i) => `line ${i.line}: ${i.title}: ${i.content}`).join('\n'));
  });
  // Instructions, with continuation lines joined.
  const ins = [];
  let cur = '';
  let line0 = 0;
  text.split('\n').forEach((l, i) => {
    const t = l.trim();
    if (!cur && (!t || t.startsWith('#'))) return;
    if (!cur) line0 = i + 1;
    if (t.startsWith('#')) return;
    cur += (cur ? ' ' : '') + t.replace(/\\$/, '').trim();
    if (!t.endsWith('\\')) {
      const m = /^(\w+)\s+([\s\S]*)$/.exec(cur);
      ins.push({ op: m[1].toUpperCase(), arg: m[2], line: line0 });
      cur = '';
    }
  });
  const stages = [];
  for (const i of ins) {
    if (i.op === 'FROM') stages.push({ from: i, ins: [] });
    else if (stages.length) stages[stages.length - 1].ins.push(i);
  }
  const last = stages[stages.length - 1];
  check('dockerfile: multi-stage, pinned Debian 12 slim bases, runtime copies only from the builder', () => {
    const p = new Problems();
    p.expect(stages.length >= 2, 'not multi-stage');
    const names = new Set();
    for (const s of stages) {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(s.from.arg);
      const img = m[1];
      if (m[2]) names.add(m[2]);
      if (names.has(img)) continue;
      const { tag, digest } = splitImage(img);
      p.expect(digest || (tag && tag !== 'latest'), `line ${s.from.line}: base ${img} has no pinned tag or digest`);
      p.expect(/^debian:12[\w.-]*slim/.test(img), `line ${s.from.line}: base ${img} is not debian:12 slim`);
    }
    for (const i of last.ins.filter((x) => x.op === 'COPY')) {
      const from = /--from=(\S+)/.exec(i.arg);
      if (from) p.expect(names.has(from[1]), `line ${i.line}: COPY --from=${from[1]} is not a stage`);
    }
    p.done();
  });
  check('dockerfile: no ADD of URLs, no curl/wget downloads, no sudo', () => {
    const p = new Problems();
    for (const i of ins) {
      if (i.op === 'ADD') p.add(`line ${i.line}: ADD (use COPY; never fetch URLs at build time)`);
      if (i.op === 'RUN' && /\b(curl|wget)\b/.test(i.arg)) p.add(`line ${i.line}: downloads with curl/wget`);
      if (/\bsudo\b/.test(i.arg)) p.add(`line ${i.line}: sudo`);
    }
    p.done();
  });
  check('dockerfile: runtime stage runs as uid 10001 with an exec-form command and no entrypoint wrapper', () => {
    const p = new Problems();
    const users = last.ins.filter((i) => i.op === 'USER');
    p.expect(users.length && /^10001(:10001)?$/.test(users[users.length - 1].arg), 'last USER is not 10001');
    const after = last.ins.slice(last.ins.indexOf(users[users.length - 1]) + 1);
    p.expect(!after.some((i) => i.op === 'RUN'), 'RUN after USER (runs as root-owned build step?)');
    for (const i of last.ins.filter((x) => x.op === 'CMD' || x.op === 'ENTRYPOINT')) {
      let arr = null;
      try { arr = JSON.parse(i.arg); } catch (e) { /* shell form */ }
      p.expect(Array.isArray(arr), `line ${i.line}: ${i.op} is not in exec (JSON) form`);
      if (Array.isArray(arr)) p.expect(!/(^|\/)(sh|bash)$/.test(arr[0]) && !/\.sh$/.test(arr[0]), `line ${i.line}: ${i.op} runs a shell`);
    }
    p.expect(!last.ins.some((i) => i.op === 'ENTRYPOINT'), 'ENTRYPOINT set: the binaries are the entrypoints');
    p.done();
  });
  check('dockerfile: runtime installs the runtime libraries, no -dev packages, and the three binaries', () => {
    const p = new Problems();
    const run = last.ins.filter((i) => i.op === 'RUN').map((i) => i.arg).join(' ');
    for (const pkg of ['libhiredis0.14', 'libevent-2.1-7', 'libyaml-0-2', 'libmsgpackc2', 'libssl3', 'libjansson4', 'git', 'python3', 'ca-certificates']) {
      p.expect(new RegExp(`(^|\\s)${pkg.replace(/\./g, '\\.')}(\\s|$)`).test(run), `runtime does not install ${pkg}`);
    }
    p.expect(!/\S+-dev\b/.test(run), 'runtime installs -dev packages');
    p.expect(/--no-install-recommends/.test(run) && /rm -rf \/var\/lib\/apt\/lists/.test(run), 'apt without --no-install-recommends or list cleanup');
    const copies = last.ins.filter((i) => i.op === 'COPY').map((i) => i.arg).join(' ');
    p.expect(/\/usr\/local\/bin\/?$|\/usr\/local\/bin\/\s/.test(copies), 'binaries are not copied to /usr/local/bin');
    p.expect(/workflows\/?\s+\/etc\/weft\//.test(copies), 'workflows are not copied to /etc/weft');
    const build = stages.slice(0, -1).flatMap((s) => s.ins).filter((i) => i.op === 'RUN').map((i) => i.arg).join(' ');
    for (const bin of ['weft-scheduler', 'weft-worker', 'cli/weft']) p.expect(build.includes(bin), `the build stage does not install ${bin}`);
    p.done();
  });
  check('dockerfile: the build context ignore file keeps out build trees and sends the sources', () => {
    const ign = path.join(DEPLOY, 'Dockerfile.dockerignore');
    if (!fs.existsSync(ign)) throw new Error('deploy/Dockerfile.dockerignore missing');
    const lines = fs.readFileSync(ign, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const p = new Problems();
    p.expect(lines[0] === '*', 'does not start by ignoring everything');
    const copied = ins.filter((i) => i.op === 'COPY' && !/--from/.test(i.arg))
      .flatMap((i) => i.arg.split(/\s+/).slice(0, -1)).map((s) => s.replace(/\/$/, ''));
    for (const c of copied) p.expect(lines.includes(`!${c}`) || lines.includes(`!${c}/`), `COPY ${c} is not re-included by !${c}`);
    p.done();
  });
}

// ---- main ----------------------------------------------------------------------

function main() {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-deploy-'));
  try {
    copyDir(DEPLOY, path.join(stage, 'deploy'));
    copyDir(path.join(ROOT, 'workflows'), path.join(stage, 'workflows'));
    const sk8s = path.join(stage, 'deploy', 'k8s');

    // Files outside deploy/ that generators name but that another part of
    // the project has not added yet: render with a placeholder, say so.
    check('inputs: every generator source file exists', () => {
      const missing = [];
      const walk = (dir) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name === 'kustomization.yaml') {
            const k = YAML.parse(fs.readFileSync(p, 'utf8'));
            for (const g of [...(k.configMapGenerator || []), ...(k.secretGenerator || [])]) {
              for (const f of [...(g.files || []).map((x) => x.split('=').pop()), ...(g.envs || [])]) {
                const abs = path.resolve(dir, f);
                if (!fs.existsSync(abs)) missing.push(path.relative(stage, abs));
              }
            }
          }
        }
      };
      walk(sk8s);
      const ours = missing.filter((m) => m.startsWith('deploy/'));
      if (ours.length) throw new Error(`missing: ${ours.join(', ')}`);
      for (const m of missing) {
        fs.mkdirSync(path.dirname(path.join(stage, m)), { recursive: true });
        fs.writeFileSync(path.join(stage, m), '# placeholder written by tests/deploy/validate.js\n');
      }
      if (missing.length) return { skip: `not in the tree yet: ${missing.join(', ')} (rendered with a placeholder; kubectl kustomize fails on the real tree until it is added)` };
      return undefined;
    });

    check('inputs: every shipped workflow is in the weft-workflows ConfigMap', () => {
      const k = YAML.parse(fs.readFileSync(path.join(K8S, 'base', 'kustomization.yaml'), 'utf8'));
      const listed = new Set();
      for (const g of k.configMapGenerator) for (const f of g.files || []) listed.add(path.basename(f));
      const shipped = fs.readdirSync(path.join(ROOT, 'workflows')).filter((f) => /\.ya?ml$/.test(f));
      const absent = shipped.filter((f) => !listed.has(f));
      if (absent.length) warn(`workflows not deployed by deploy/k8s/base (add them to weft-workflows): ${absent.join(', ')}`);
    });

    // A combination the overlays do not cover: base with the HPA and the
    // toolbox instead of KEDA.
    const combo = path.join(sk8s, 'overlays', '.validate-hpa');
    fs.mkdirSync(combo, { recursive: true });
    fs.writeFileSync(path.join(combo, 'kustomization.yaml'), YAML.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../../base', '../../secrets', '../../optional/hpa', '../../optional/toolbox'],
      patches: [{ path: 'worker.yaml' }],
    }));
    fs.writeFileSync(path.join(combo, 'worker.yaml'), YAML.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'weft-worker' }, spec: { replicas: null },
    }));

    const targets = {
      'overlays/dev': 'overlays/dev',
      'overlays/prod': 'overlays/prod',
      secrets: 'secrets',
      'optional/keda': 'optional/keda',
      'optional/hpa': 'optional/hpa',
      'optional/toolbox': 'optional/toolbox',
      'base+hpa+toolbox': 'overlays/.validate-hpa',
    };
    const kubectl = which('kubectl');
    const rendered = {};
    for (const [name, rel] of Object.entries(targets)) {
      const dir = path.join(sk8s, rel);
      let mine = null;
      check(`render ${name}: validate.js's kustomize subset`, () => {
        mine = buildKustomization(dir).resources;
        if (!mine.length) throw new Error('no resources');
      });
      let theirs = null;
      check(`render ${name}: kubectl kustomize`, () => {
        if (!kubectl) return { skip: 'kubectl not installed (Debian does not package it); the built-in rendering is used' };
        const r = run(kubectl, ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', dir]);
        if (r.status !== 0) throw new Error(r.stderr.trim());
        theirs = parseYamlDocs(r.stdout, `kubectl kustomize ${rel}`);
        // kustomize wraps long base64 values over lines; the API server's
        // decoder skips the newlines, so compare and validate without them.
        for (const d of theirs) {
          if (d.kind === 'Secret') for (const k of Object.keys(d.data || {})) d.data[k] = d.data[k].replace(/\s+/g, '');
        }
        return undefined;
      });
      if (mine && theirs) {
        check(`render ${name}: both renderings agree (${theirs.length} objects)`, () => {
          const p = new Problems();
          const a = new Map(mine.map((d) => [resKey(d), d]));
          const b = new Map(theirs.map((d) => [resKey(d), d]));
          for (const k of a.keys()) if (!b.has(k)) p.add(`only validate.js renders ${k}`);
          for (const k of b.keys()) if (!a.has(k)) p.add(`only kubectl renders ${k}`);
          for (const [k, d] of a) if (b.has(k)) { const diff = firstDiff(d, b.get(k)); if (diff) p.add(`${k} ${diff}`); }
          p.done();
        });
      }
      rendered[name] = theirs || mine;
    }

    // Schemas, once per object and rendering.
    for (const [name, docs] of Object.entries(rendered)) {
      if (!docs) continue;
      for (const d of docs) check(`schema ${name}: ${d.apiVersion} ${resName(d)}`, () => validateDoc(d));
    }

    // Cross-references over what is applied together.
    const R = (n) => rendered[n] || [];
    if (rendered['overlays/dev']) crossReferences('dev', R('overlays/dev'), { shortSteps: true });
    if (rendered['overlays/prod']) crossReferences('prod+secrets', [...R('overlays/prod'), ...R('secrets')], { scalerOwnsReplicas: true });
    if (rendered['base+hpa+toolbox']) crossReferences('base+hpa+toolbox', R('base+hpa+toolbox'), { scalerOwnsReplicas: true });

    check('overlays: dev runs 1 scheduler and 1 worker, prod 2 schedulers, KEDA, PDBs and a larger Redis', () => {
      const p = new Problems();
      const get = (docs, kind, n) => docs.find((d) => d.kind === kind && d.metadata.name === n);
      const dev = R('overlays/dev');
      const prod = R('overlays/prod');
      p.expect(get(dev, 'Deployment', 'weft-scheduler').spec.replicas === 1, 'dev scheduler replicas');
      p.expect(get(dev, 'Deployment', 'weft-worker').spec.replicas === 1, 'dev worker replicas');
      p.expect(get(prod, 'Deployment', 'weft-scheduler').spec.replicas === 2, 'prod scheduler replicas');
      p.expect(get(prod, 'ScaledObject', 'weft-worker'), 'prod has no KEDA ScaledObject');
      p.expect(get(prod, 'PodDisruptionBudget', 'weft-scheduler') && get(prod, 'PodDisruptionBudget', 'weft-worker'), 'prod PDBs');
      const size = (docs) => {
        const q = get(docs, 'StatefulSet', 'weft-redis').spec.volumeClaimTemplates[0].spec.resources.requests.storage;
        const m = /^(\d+)(Mi|Gi|Ti)$/.exec(q);
        return Number(m[1]) * { Mi: 1, Gi: 1024, Ti: 1048576 }[m[2]];
      };
      p.expect(size(prod) > size(dev), 'prod Redis volume is not larger than dev');
      for (const docs of [dev, prod]) {
        const r = get(docs, 'StatefulSet', 'weft-redis').spec.template.spec.containers[0];
        const lim = r.resources.limits.memory;
        const max = (r.env.find((e) => e.name === 'REDIS_MAXMEMORY') || {}).value;
        const bytes = (s) => { const m = /^(\d+)(mb|gb|Mi|Gi)$/.exec(s); return Number(m[1]) * { mb: 1, gb: 1024, Mi: 1, Gi: 1024 }[m[2]]; };
        p.expect(bytes(max) < bytes(lim), `Redis maxmemory ${max} is not below its memory limit ${lim}`);
      }
      p.done();
    });

    if (rendered.secrets) checkSecrets('template', R('secrets'));
    check('secrets: the committed users.acl is users.acl.in rendered (make-secrets.sh --template)', () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-deploy-tmpl-'));
      try {
        const r = run('sh', [path.join(K8S, 'make-secrets.sh'), '--template', out]);
        if (r.status !== 0) throw new Error(r.stderr);
        const p = new Problems();
        for (const f of fs.readdirSync(out)) {
          const a = fs.readFileSync(path.join(out, f), 'utf8');
          const bfile = path.join(K8S, 'secrets', f);
          p.expect(fs.existsSync(bfile) && fs.readFileSync(bfile, 'utf8') === a, `deploy/k8s/secrets/${f} differs: run deploy/k8s/make-secrets.sh --template deploy/k8s/secrets`);
        }
        p.done();
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });

    // make-secrets.sh for real: random, hashed, consistent.
    let real = null;
    const realDir = path.join(stage, 'real-secrets');
    check('secrets: make-secrets.sh writes hashed, consistent secrets and never overwrites', () => {
      const r = run('sh', [path.join(K8S, 'make-secrets.sh'), realDir]);
      if (r.status !== 0) throw new Error(r.stderr);
      real = buildKustomization(realDir).resources;
      const p = new Problems();
      const acl = decodedData(real.find((d) => d.metadata.name === 'weft-redis-acl'))['users.acl'];
      p.expect(!/CHANGE-ME|>[^\s]/.test(acl), 'users.acl holds a plain-text password');
      p.expect(/#[0-9a-f]{64}/.test(acl), 'users.acl holds no SHA-256 password hash');
      const again = run('sh', [path.join(K8S, 'make-secrets.sh'), realDir]);
      p.expect(again.status !== 0, 'a second run overwrote the secrets');
      const mode = fs.statSync(path.join(realDir, 'hmac.key')).mode & 0o777;
      p.expect(mode === 0o600, `hmac.key mode ${mode.toString(8)}, expected 600`);
      p.done();
    });
    if (real) checkSecrets('make-secrets.sh', real);

    // yamllint over deploy/.
    check('yamllint deploy/ (deploy/.yamllint)', () => {
      const yl = which('yamllint');
      if (!yl) throw new Error('yamllint not found: apt-get install yamllint (scripts/install-deps.sh)');
      const r = run(yl, ['-c', path.join(DEPLOY, '.yamllint'), '-f', 'parsable', '-s', DEPLOY]);
      if (r.status !== 0) throw new Error((r.stdout + r.stderr).trim());
    });

    dockerfileChecks();

    // The Redis config and ACL from the dev rendering and make-secrets.sh.
    const dev = R('overlays/dev');
    const confMap = dev.find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('weft-redis-config'));
    const credsOf = (docs) => {
      const c = {};
      for (const d of docs.filter((x) => x.kind === 'Secret')) {
        const data = decodedData(d);
        if (data.REDIS_URL) {
          const m = /^redis:\/\/([^:]+):([^@]+)@/.exec(data.REDIS_URL);
          if (m) c[m[1]] = m[2];
        }
        if (data.username) c[data.username] = data.password;
      }
      return c;
    };
    if (confMap && rendered.secrets) {
      const aclOf = (docs) => decodedData(docs.find((d) => d.metadata.name === 'weft-redis-acl'))['users.acl'];
      redisChecks(confMap.data['redis.conf'], aclOf(R('secrets')), credsOf(R('secrets')));
      if (real) {
        // The same server checks with random, hashed passwords: logging in
        // proves the hashes and the URLs agree.
        const creds = credsOf(real);
        check('redis: make-secrets.sh users log in with their REDIS_URL passwords (hashed ACL)', () => {
          if (!which('redis-server')) throw new Error('redis-server not installed');
          const srv = startRedis(confMap.data['redis.conf'], aclOf(real));
          try {
            if (!srv.up) throw new Error(`redis-server did not start:\n${srv.tail()}`);
            const p = new Problems();
            for (const [u, pw] of Object.entries(creds)) {
              const r = srv.cli(null, null, ['AUTH', u, pw]);
              p.expect(r.stdout.trim() === 'OK', `${u}: ${r.stdout.trim()} ${r.stderr.trim()}`);
            }
            p.expect(Object.keys(creds).length === 5, `expected 5 users with credentials, got ${Object.keys(creds).join(', ')}`);
            p.done();
          } finally {
            srv.stop();
          }
        });
      }
    } else {
      check('redis: the dev rendering has the Redis config and the secrets template renders', () => { throw new Error('missing'); });
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }

  console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
}

main();
