// Validates Kubernetes objects in two passes, both from kept libraries generated from the official OpenAPI
// definitions: kubernetes-models' JSON-schema validators (types, required fields, enums), then unknown fields
// against @kubernetes/client-node's model type maps, as the API server's strict field validation (kubectl's
// default) refuses them. Both packages are ESM-only and jest runs CommonJS, so manifests.test.ts runs this file
// in a child process: stdin is a JSON array of objects, stdout a JSON array of { status: 'valid' | 'invalid' |
// 'unsupported', message? } in the same order. 'unsupported' = kubernetes-models has no such apiVersion/kind.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const obj of objects) {
  let Model;
  try {
    const mod = await import(`kubernetes-models/${obj.apiVersion}`);
    Model = mod[obj.kind];
  } catch {
    Model = undefined;
  }
  if (typeof Model !== 'function') {
    results.push({ status: 'unsupported' });
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    results.push({ status: 'invalid', message: e instanceof Error ? e.message : String(e) });
    continue;
  }
  const version = obj.apiVersion.split('/').pop();
  const typeName = `${version.charAt(0).toUpperCase()}${version.slice(1)}${obj.kind}`;
  if (!k8s[typeName]?.attributeTypeMap) {
    results.push({
      status: 'invalid',
      message: `@kubernetes/client-node has no model ${typeName} to check fields against`,
    });
    continue;
  }
  const unknown = unknownFields(obj, typeName, '');
  results.push(
    unknown.length ? { status: 'invalid', message: `unknown field(s): ${unknown.join(', ')}` } : { status: 'valid' },
  );
}
process.stdout.write(JSON.stringify(results));

/** Paths of keys the model type (and the types it nests) does not define; maps and scalars are open. */
function unknownFields(value, type, path) {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, array[1], `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map)
    return typeof value === 'object'
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1], `${path}.${k}`))
      : [];
  const attrs = k8s[type]?.attributeTypeMap;
  if (!attrs || typeof value !== 'object' || Array.isArray(value)) return [];
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const where = path ? `${path}.${k}` : k;
    return byName.has(k) ? unknownFields(v, byName.get(k), where) : [where];
  });
}
