// Drives the official Alibaba Cloud ECS Node.js SDK (@alicloud/ecs20140526 on
// @alicloud/openapi-core) the way its users configure it, from a JSON job on stdin:
//
//   {"endpoint": "127.0.0.1:8080", "protocol": "http",
//    "signature": "acs3" | "acs3-sm3" | "v1",
//                                    // acs3: Config default (ACS3-HMAC-SHA256, doRequest);
//                                    // acs3-sm3: signatureAlgorithm "ACS3-HMAC-SM3" (doRequest);
//                                    // v1: signatureAlgorithm "v2" (RPC HMAC-SHA1, doRPCRequest)
//    "accessKeyId": "...", "accessKeySecret": "...", "regionId": "cn-hangzhou",
//    "retryThrottling": true,        // default: the SDK's RetryOptions retry Throttling
//    "admin": {"url": "http://127.0.0.1:8080/admin/v1", "user": "...", "password": "..."},
//    "calls": [
//      {"name": "run", "action": "RunInstances", "params": {"ZoneId": "...", "Amount": 1},
//       "runtime": {"extendsParameters": {"headers": {...}, "queries": {...}}}},
//      {"action": "DescribeRegions", "config": {"accessKeySecret": "wrong"}},  // another client
//      {"action": "wait", "params": {"InstanceId": {"$ref": "run.InstanceIdSets.InstanceIdSet.0"},
//                                    "Status": "Running" | null, "Settled": true, "Timeout": 60}},
//      {"action": "repeat", "params": {"Action": "RebootInstance", "Params": {...}, "Max": 200,
//                                      "Parallel": 10, "UntilCode": "Throttling"}, "config": {"retryThrottling": false}},
//      ...]}
//
// Each call builds the SDK's own request model (new Ecs.<Action>Request({...}), camelCase
// fields mapped from the API's PascalCase names through the model's static names()) and
// calls client.<action>WithOptions(request, new RuntimeOptions({...})). Prints one JSON
// document: {"results": [{"action", "body"} | {"action", "error": {code, statusCode, message,
// requestId, data}}]} where body is the typed response model read back with toMap() (so a
// field the typed model cannot read is missing here, as it is for the SDK's users), and
// `unread` / `mistyped` audit the raw JSON body against the model (see audit()).
//
// A parameter value {"$ref": "<call name>.<path>"} is taken from an earlier call's body.
// `wait` polls DescribeInstances through the same SDK client until the instance shows
// `Status` (null: until it is gone); with `Settled` it also waits until the admin API shows
// no engine lock on the instance (test instrumentation: the Alibaba API has no
// LatestOperationState). A driver bug exits non-zero; API errors are data.

"use strict";

const Ecs = require("@alicloud/ecs20140526");
const { $OpenApiUtil } = require("@alicloud/openapi-core");
const $dara = require("@darabonba/typescript");

const EcsClient = Ecs.default;

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (data += chunk));
    process.stdin.on("end", () => resolve(data));
    process.stdin.on("error", reject);
  });
}

function clientOf(job, over) {
  const o = over || {};
  const pick = (k) => (k in o ? o[k] : job[k]);
  const config = new $OpenApiUtil.Config({
    accessKeyId: pick("accessKeyId"),
    accessKeySecret: pick("accessKeySecret"),
    endpoint: job.endpoint,
    protocol: job.protocol || "http",
    regionId: pick("regionId"),
    readTimeout: 60000,
    connectTimeout: 10000,
  });
  if (pick("retryThrottling") !== false) {
    // The SDK's own retry policy, as users configure it: Throttling answers are retried after
    // the server's x-acs-retry-after (openapi-core getThrottlingTimeLeft). The default server
    // keeps rate limits on, and a batch may send more than 20 calls of one action a second.
    config.retryOptions = new $dara.RetryOptions({
      retryable: true,
      retryCondition: [{ exception: ["ThrottlingError"], errorCode: ["Throttling"], maxAttempts: 10, maxDelay: 2000 }],
    });
  }
  if (job.signature === "v1") {
    config.signatureAlgorithm = "v2"; // openapi-core callApi: "v2" selects doRPCRequest (HMAC-SHA1 1.0)
  } else if (job.signature === "acs3-sm3") {
    config.signatureAlgorithm = "ACS3-HMAC-SM3"; // doRequest with the SM3 hash and HMAC
  } else if (job.signature !== "acs3") {
    throw new Error(`unknown signature path ${job.signature}`);
  }
  return new EcsClient(config);
}

// Build model `Cls` from wire (PascalCase) names, recursing into nested models and arrays.
// An unknown name is a driver error: the SDK would silently drop it.
function build(Cls, wire, path) {
  if (wire === null || typeof wire !== "object" || Array.isArray(wire)) {
    throw new Error(`${path}: expected an object for ${Cls.name}`);
  }
  const names = Cls.names();
  const types = Cls.types();
  const byWire = {};
  for (const [field, wireName] of Object.entries(names)) byWire[wireName] = field;
  const fields = {};
  for (const [wireName, value] of Object.entries(wire)) {
    const field = byWire[wireName];
    if (field === undefined) throw new Error(`${path}: ${Cls.name} has no ${wireName}`);
    if (value === null || value === undefined) continue;
    fields[field] = convert(types[field], value, `${path}.${wireName}`);
  }
  return new Cls(fields);
}

function convert(type, value, path) {
  if (typeof type === "function") return build(type, value, path);
  if (type && typeof type === "object" && type.type === "array") {
    if (!Array.isArray(value)) throw new Error(`${path}: expected an array`);
    return value.map((v, i) => convert(type.itemType, v, `${path}[${i}]`));
  }
  if (type && typeof type === "object" && type.type === "map") return value;
  return value; // a scalar: passed as given (the SDK's users pass JS values of the model's type)
}

function lowerFirst(s) {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function lookup(named, ref) {
  const [name, ...path] = ref.split(".");
  if (!(name in named)) throw new Error(`$ref to unknown call ${name}`);
  let v = named[name];
  for (const p of path) {
    if (v === null || v === undefined) throw new Error(`$ref ${ref}: nothing at ${p}`);
    v = v[/^\d+$/.test(p) ? Number(p) : p];
  }
  if (v === undefined) throw new Error(`$ref ${ref} is undefined`);
  return v;
}

function resolve(value, named) {
  if (Array.isArray(value)) return value.map((v) => resolve(v, named));
  if (value && typeof value === "object") {
    if (Object.keys(value).length === 1 && typeof value.$ref === "string") return lookup(named, value.$ref);
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolve(v, named);
    return out;
  }
  return value;
}

function errorOf(e) {
  // openapi-core ClientError / ServerError / ThrottlingError (exceptions/*.js); anything
  // without a statusCode is not an API answer and fails the driver.
  if (e === null || typeof e !== "object" || e.statusCode === undefined) throw e;
  return {
    name: e.name,
    code: e.code,
    statusCode: e.statusCode,
    message: e.message,
    requestId: e.requestId,
    retryAfter: e.retryAfter,
    data: e.data,
  };
}

// What the typed response model makes of the raw JSON body: `unread` lists the paths of
// fields the model has no name for (a user of the SDK never sees them), `mistyped` those
// whose JSON type is not the model's (the Node SDK coerces them; stricter SDKs fail).
function audit(Cls, raw, path, out) {
  const names = Cls.names();
  const types = Cls.types();
  const byWire = {};
  for (const [field, wireName] of Object.entries(names)) byWire[wireName] = field;
  for (const [key, value] of Object.entries(raw)) {
    const field = byWire[key];
    if (field === undefined) {
      out.unread.push(`${path}${key}`);
      continue;
    }
    auditValue(types[field], value, `${path}${key}`, out);
  }
}

function auditValue(type, value, path, out) {
  if (value === null) return;
  if (typeof type === "function") {
    if (typeof value === "object" && !Array.isArray(value)) audit(type, value, `${path}.`, out);
    else out.mistyped.push(`${path}: ${Array.isArray(value) ? "array" : typeof value} for ${type.name}`);
  } else if (type && typeof type === "object" && type.type === "array") {
    if (Array.isArray(value)) value.forEach((v, i) => auditValue(type.itemType, v, `${path}[${i}]`, out));
    else out.mistyped.push(`${path}: ${typeof value} for an array`);
  } else if (typeof type === "string" && ["string", "number", "boolean"].includes(type)) {
    if (typeof value !== type) out.mistyped.push(`${path}: ${typeof value} ${JSON.stringify(value)} for ${type}`);
  }
}

async function call(client, action, params, runtime) {
  const Req = Ecs[`${action}Request`];
  const method = client[`${lowerFirst(action)}WithOptions`];
  if (typeof Req !== "function" || typeof method !== "function") {
    throw new Error(`@alicloud/ecs20140526 has no ${action}Request / ${lowerFirst(action)}WithOptions`);
  }
  const req = build(Req, params || {}, action);
  const rt = new $dara.RuntimeOptions({});
  if (runtime && runtime.extendsParameters) {
    rt.extendsParameters = new $dara.ExtendsParameters(runtime.extendsParameters);
  }
  // Observe (not change) the raw answer the method reads, to audit the typed model against it.
  let raw;
  const callApi = client.callApi;
  client.callApi = async function (...args) {
    const got = await callApi.apply(this, args);
    raw = got.body;
    return got;
  };
  let resp;
  try {
    resp = await method.call(client, req, rt);
  } finally {
    client.callApi = callApi;
  }
  const out = { unread: [], mistyped: [] };
  audit(Ecs[`${action}ResponseBody`], raw, "", out);
  return { statusCode: resp.statusCode, body: resp.body.toMap(), ...out };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function adminLock(admin, iid) {
  const auth = Buffer.from(`${admin.user}:${admin.password}`).toString("base64");
  const r = await fetch(`${admin.url}/instances/${iid}`, { headers: { authorization: `Basic ${auth}` } });
  if (r.status !== 200) throw new Error(`admin GET instances/${iid}: ${r.status} ${await r.text()}`);
  return (await r.json()).lock;
}

async function wait(client, job, params) {
  const iid = params.InstanceId;
  const want = params.Status === undefined ? null : params.Status;
  const deadline = Date.now() + (params.Timeout || 60) * 1000;
  let last = null;
  for (;;) {
    let inst = null;
    try {
      const got = await call(client, "DescribeInstances", { RegionId: job.regionId, InstanceIds: JSON.stringify([iid]) });
      inst = (got.body.Instances.Instance || []).find((i) => i.InstanceId === iid) || null;
      last = inst ? inst.Status : "gone";
      let done = want === null ? inst === null : inst !== null && inst.Status === want;
      if (done && params.Settled && inst !== null) done = (await adminLock(job.admin, iid)) === null;
      if (done) return { statusCode: 200, body: inst || {} };
    } catch (e) {
      if (!(e && typeof e.code === "string" && e.code.includes("Throttling"))) throw e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${iid} to be ${want} (last ${last})`);
    await sleep(100);
  }
}

async function main() {
  const job = JSON.parse(await readStdin());
  const client = clientOf(job);
  const named = {};
  const results = [];
  for (const c of job.calls) {
    const params = resolve(c.params || {}, named);
    let result;
    if (c.action === "wait") {
      const got = await wait(client, job, params);
      result = { action: "wait", body: got.body };
    } else if (c.action === "repeat") {
      // Send one call in rounds of `Parallel` at once until one fails with UntilCode (at
      // most Max calls in all). The answer is that failure (or none) and the count sent.
      const cl = c.config ? clientOf(job, c.config) : client;
      const parallel = params.Parallel || 1;
      let count = 0;
      let hit = null;
      while (hit === null && count < params.Max) {
        const round = Math.min(parallel, params.Max - count);
        count += round;
        const settled = await Promise.allSettled(
          Array.from({ length: round }, () => call(cl, params.Action, params.Params || {}, c.runtime)));
        for (const s of settled) {
          if (s.status === "rejected") {
            const e = errorOf(s.reason);
            if (e.code === params.UntilCode && hit === null) hit = e;
          }
        }
      }
      result = { action: "repeat", body: { Count: count }, error: hit || undefined };
    } else {
      try {
        const got = await call(c.config ? clientOf(job, c.config) : client, c.action, params, c.runtime);
        result = { action: c.action, statusCode: got.statusCode, body: got.body, unread: got.unread, mistyped: got.mistyped };
      } catch (e) {
        result = { action: c.action, error: errorOf(e) };
      }
    }
    if (c.name) named[c.name] = result.body !== undefined ? result.body : { error: result.error };
    results.push(result);
  }
  // Exit once written: the SDK's keep-alive sockets would hold the process open for seconds.
  process.stdout.write(JSON.stringify({ results }), () => process.exit(0));
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
